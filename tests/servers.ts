/**
 * Private broker servers for tests that stop, kill or restart them: a redis-server and a
 * RabbitMQ node of their own, on free ports, in their own directories, never the shared ones.
 * Each can be killed hard and started again on the same data; `stop()` removes everything.
 *
 * @module
 */
import { freePort, waitUntilListening } from "./helpers.ts";

/** Why private servers cannot be started here (undefined when they can). */
export function privateServerProblem(kind: "redis" | "rabbitmq"): string | undefined {
  const program = kind === "redis" ? "/usr/bin/redis-server" : RABBIT_SCRIPT;
  try {
    Deno.statSync(program);
  } catch {
    return `${program} is not installed`;
  }
  if (kind === "rabbitmq" && Deno.uid() !== 0) {
    return "a private RabbitMQ node needs root here (the server scripts)";
  }
  return undefined;
}

/** How a {@linkcode PrivateRedis} is started. */
export interface PrivateRedisOptions {
  /** Every write fsynced before it is answered (appendfsync always): a SIGKILL loses nothing. */
  readonly aof?: boolean;
  /** Further arguments of its command line. */
  readonly extra?: readonly string[];
  /** Its whole command line, instead of the plain one. */
  readonly args?: (port: number, dir: string) => string[];
}

/** A redis-server of its own; with `aof`, every write is fsynced (appendfsync always). */
export class PrivateRedis implements AsyncDisposable {
  readonly port: number;
  readonly dir: string;
  readonly #args: string[];
  #child: Deno.ChildProcess | undefined;

  private constructor(dir: string, port: number, args: string[]) {
    this.dir = dir;
    this.port = port;
    this.#args = args;
  }

  /**
   * Starts a server; `extra` arguments are added to its command line, or `args` makes the whole
   * command line (a TLS listener on the port, say).
   */
  static async start(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const dir = await Deno.makeTempDir({ prefix: "ttg-redis-private-" });
    const port = freePort();
    if (options.args) {
      const server = new PrivateRedis(dir, port, options.args(port, dir));
      await server.startAgain();
      return server;
    }
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", ""];
    if (options.aof) args.push("--appendonly", "yes", "--appendfsync", "always");
    const server = new PrivateRedis(dir, port, [...args, ...(options.extra ?? [])]);
    await server.startAgain();
    return server;
  }

  /** `redis://127.0.0.1:<port>`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server (again, on the same data) and waits until it accepts connections. */
  async startAgain(): Promise<void> {
    this.#child = new Deno.Command("redis-server", {
      args: this.#args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitUntilListening(this.port, { timeoutMs: 10_000, pollMs: 25 });
  }

  /** Sends `signal` (SIGSTOP, SIGCONT) to the server, without waiting for it to exit. */
  signal(signal: Deno.Signal): void {
    this.#child?.kill(signal);
  }

  /** Kills the server (SIGKILL by default) and waits for it to exit. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<void> {
    try {
      this.#child?.kill(signal);
    } catch { /* exited */ }
    await this.#child?.status;
    this.#child = undefined;
  }

  /** Kills it hard, then starts it again on the same data. */
  async crash(downMs = 0): Promise<void> {
    await this.kill("SIGKILL");
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.startAgain();
  }

  /** Stops the server and removes its directory. */
  async stop(): Promise<void> {
    await this.kill("SIGTERM");
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

const RABBIT_SCRIPT = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/** A RabbitMQ node of its own (name, directories, cookie, ports). */
export class PrivateRabbit implements AsyncDisposable {
  readonly port: number;
  readonly dir: string;
  readonly #env: Record<string, string>;
  #child: Deno.ChildProcess | undefined;

  private constructor(dir: string, port: number, env: Record<string, string>) {
    this.dir = dir;
    this.port = port;
    this.#env = env;
  }

  /** Starts a node whose rabbitmq.conf is `conf` plus its listener on a free port. */
  static async start(options: { readonly conf?: string } = {}): Promise<PrivateRabbit> {
    const dir = await Deno.makeTempDir({ prefix: "ttg-rabbit-private-" });
    const port = freePort();
    const conf = [`listeners.tcp.default = 127.0.0.1:${port}`, "loopback_users = none"]
      .concat(options.conf ? [options.conf] : []).join("\n");
    await Deno.writeTextFile(`${dir}/rabbitmq.conf`, conf + "\n");
    await Deno.writeTextFile(`${dir}/enabled_plugins`, "[].\n");
    const env = {
      HOME: dir,
      RABBITMQ_NODENAME: `ttg-${crypto.randomUUID().slice(0, 8)}@localhost`,
      RABBITMQ_DIST_PORT: String(freePort()),
      RABBITMQ_CONFIG_FILE: `${dir}/rabbitmq.conf`,
      RABBITMQ_ADVANCED_CONFIG_FILE: `${dir}/advanced.config`,
      RABBITMQ_MNESIA_BASE: `${dir}/mnesia`,
      RABBITMQ_LOG_BASE: `${dir}/log`,
      RABBITMQ_ENABLED_PLUGINS_FILE: `${dir}/enabled_plugins`,
      RABBITMQ_PID_FILE: `${dir}/rabbitmq.pid`,
    };
    const node = new PrivateRabbit(dir, port, env);
    try {
      await node.startAgain();
    } catch (error) {
      await node.stop();
      throw error;
    }
    return node;
  }

  /** `amqp://guest:guest@127.0.0.1:<port>`. */
  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  /** Starts the node (again, on the same data) and waits until AMQP accepts connections. */
  async startAgain(): Promise<void> {
    this.#child = new Deno.Command(RABBIT_SCRIPT, {
      env: this.#env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitUntilListening(this.port, { timeoutMs: 90_000, pollMs: 100 });
  }

  /** `rabbitmqctl stop_app` then `start_app` on this node (the VM stays up). */
  async bounceApp(downMs = 0): Promise<void> {
    await this.#ctl("stop_app");
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.#ctl("start_app");
    await waitUntilListening(this.port, { timeoutMs: 60_000, pollMs: 100 });
  }

  /** SIGKILLs the Erlang VM (no clean shutdown), then starts the node again on the same data. */
  async crash(downMs = 0): Promise<void> {
    await this.#killVm();
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.startAgain();
  }

  /** Stops the node (SIGTERM; SIGKILL after 30 s) and removes its directory. */
  async stop(): Promise<void> {
    if (this.#child) {
      try {
        this.#child.kill("SIGTERM");
      } catch { /* exited */ }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stopped = await Promise.race([
        this.#child.status.then(() => true),
        new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 30_000)),
      ]);
      clearTimeout(timer);
      if (!stopped) await this.#killVm();
      this.#child = undefined;
    }
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #killVm(): Promise<void> {
    const pid = Number(await Deno.readTextFile(`${this.dir}/rabbitmq.pid`).catch(() => ""));
    if (pid > 0) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    try {
      this.#child?.kill("SIGKILL");
    } catch { /* exited */ }
    await this.#child?.status;
    this.#child = undefined;
    // The VM is gone once its AMQP port is free again.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: this.port })).close();
        await new Promise((resolve) => setTimeout(resolve, 100));
      } catch {
        return;
      }
    }
  }

  async #ctl(command: string): Promise<void> {
    const out = await new Deno.Command(RABBITMQCTL, {
      args: ["-n", this.#env.RABBITMQ_NODENAME!, command],
      env: this.#env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`rabbitmqctl ${command} failed: ${new TextDecoder().decode(out.stderr)}`);
    }
  }
}
