/**
 * A RabbitMQ node of a test's own (name, directories, cookie, ports), for tests that stop, kill
 * or reconfigure RabbitMQ: the shared node on 5672 is never stopped. Usable where the server
 * scripts are installed and the tests run as root; `whyNoPrivateNode()` says why not otherwise.
 *
 * @module
 */
import { freePort, listening, waitUntilListening } from "./helpers.ts";

const SERVER_SCRIPT = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/** Why a private node cannot be started here, or undefined when it can. */
export function whyNoPrivateNode(): string | undefined {
  try {
    Deno.statSync(SERVER_SCRIPT);
  } catch {
    return `${SERVER_SCRIPT} is not installed`;
  }
  if (Deno.uid() !== 0) return "a private RabbitMQ node needs root here (the server scripts)";
  return undefined;
}

/** Options of {@linkcode PrivateRabbitNode.start}. */
export interface PrivateNodeOptions {
  /** rabbitmq.conf; by default a plain AMQP listener on 127.0.0.1 at a free port. */
  readonly conf?: string;
  /** The port to wait for (the one `conf` listens on). */
  readonly port?: number;
  /** Plugins to enable. @default none */
  readonly plugins?: readonly string[];
  /** Directory of its data; a new temporary one by default (removed by stop()). */
  readonly dir?: string;
}

/** A private RabbitMQ node: start, kill hard and start again on the same data, stop. */
export class PrivateRabbitNode {
  readonly dir: string;
  readonly port: number;
  readonly nodeName = `ttg-${crypto.randomUUID().slice(0, 8)}@localhost`;
  readonly #distPort = freePort();
  readonly #ownDir: boolean;
  #child: Deno.ChildProcess | undefined;

  private constructor(dir: string, port: number, ownDir: boolean) {
    this.dir = dir;
    this.port = port;
    this.#ownDir = ownDir;
  }

  /** amqp:// URL of the node (guest may log in from anywhere on it). */
  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  /** Starts a node; resolves once its port accepts connections. */
  static async start(options: PrivateNodeOptions = {}): Promise<PrivateRabbitNode> {
    const dir = options.dir ?? await Deno.makeTempDir({ prefix: "ttg-rabbitmq-" });
    const port = options.port ?? freePort();
    const conf = options.conf ??
      `listeners.tcp.local = 127.0.0.1:${port}\nloopback_users = none\n`;
    await Deno.writeTextFile(`${dir}/rabbitmq.conf`, conf);
    await Deno.writeTextFile(`${dir}/enabled_plugins`, `[${(options.plugins ?? []).join(",")}].\n`);
    const node = new PrivateRabbitNode(dir, port, options.dir === undefined);
    try {
      await node.#spawn();
    } catch (error) {
      await node.stop();
      throw error;
    }
    return node;
  }

  /** Kills the node hard (SIGKILL of its VM, as a crash would) and starts it on the same data. */
  async restart(): Promise<void> {
    await this.#kill();
    await this.#spawn();
  }

  /**
   * Stops the RabbitMQ application (its clients are disconnected) and starts it again, in the
   * same VM. For quorum queues: after a hard kill, a single node's quorum queue may never elect
   * its leader again (RabbitMQ 3.x, rabbitmq/rabbitmq-server#10070).
   */
  async bounce(): Promise<void> {
    for (const command of ["stop_app", "start_app"]) {
      const out = await this.ctl(command);
      if (!out.success) throw new Error(`rabbitmqctl ${command} failed on ${this.nodeName}`);
    }
    await waitUntilListening(this.port);
  }

  /** Runs rabbitmqctl against this node. */
  async ctl(...args: string[]): Promise<{ success: boolean; stdout: string }> {
    const cookie = await Deno.readTextFile(`${this.dir}/.erlang.cookie`);
    const out = await new Deno.Command("rabbitmqctl", {
      args: ["-n", this.nodeName, "--erlang-cookie", cookie.trim(), "-q", ...args],
      stdout: "piped",
      stderr: "null",
    }).output();
    return { success: out.success, stdout: new TextDecoder().decode(out.stdout) };
  }

  /**
   * SIGTERM (the script stops the node), then SIGKILL if it has not stopped in 30 s or its VM
   * outlives the script; removes its directory once nothing writes to it any more.
   */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child) {
      child.kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stopped = await Promise.race([
        child.status.then(() => true),
        new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 30_000)),
      ]);
      clearTimeout(timer);
      if (!stopped || await listening(this.port)) await this.#kill();
      this.#child = undefined;
    }
    if (!this.#ownDir) return;
    for (let tries = 1;; tries++) {
      try {
        return await Deno.remove(this.dir, { recursive: true });
      } catch (error) {
        if (error instanceof Deno.errors.NotFound || tries >= 10) return;
        await new Promise((resolve) => setTimeout(resolve, 200)); // the VM's last writes
      }
    }
  }

  async #spawn(): Promise<void> {
    const dir = this.dir;
    this.#child = new Deno.Command(SERVER_SCRIPT, {
      env: {
        HOME: dir,
        RABBITMQ_NODENAME: this.nodeName,
        RABBITMQ_DIST_PORT: String(this.#distPort),
        RABBITMQ_CONFIG_FILE: `${dir}/rabbitmq.conf`,
        RABBITMQ_ADVANCED_CONFIG_FILE: `${dir}/advanced.config`,
        RABBITMQ_MNESIA_BASE: `${dir}/mnesia`,
        RABBITMQ_LOG_BASE: `${dir}/log`,
        RABBITMQ_ENABLED_PLUGINS_FILE: `${dir}/enabled_plugins`,
        RABBITMQ_PID_FILE: `${dir}/rabbitmq.pid`,
      },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitUntilListening(this.port);
  }

  async #kill(): Promise<void> {
    const pid = Number(await Deno.readTextFile(`${this.dir}/rabbitmq.pid`).catch(() => ""));
    try {
      if (pid > 0) Deno.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
    try {
      this.#child?.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.#child?.status;
    this.#child = undefined;
    await Deno.remove(`${this.dir}/rabbitmq.pid`).catch(() => {});
    // The VM may outlive its script for a moment: wait until the port is closed.
    const deadline = Date.now() + 30_000;
    while (await listening(this.port)) {
      if (Date.now() > deadline) throw new Error(`port ${this.port} still open after the kill`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
