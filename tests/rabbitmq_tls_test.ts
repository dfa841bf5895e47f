/**
 * RabbitMQ over TLS, for real: a private RabbitMQ node started by the test on free ports with
 * the TLS listener configuration that deploy/ generates (the plain listener off), then
 * `ttg run` over amqps://, and the submit, worker and report containers of a deployment with
 * `tls.secretName` run as processes with their generated environment. Ignored, with the reason,
 * where a private node cannot be started (no RabbitMQ server scripts, or not root).
 */
import "../tasks/node_warnings.ts";
import assert from "node:assert/strict";
import { localPlan } from "../deploy/local.ts";
import { TLS_DIR } from "../deploy/pod.ts";
import { synth } from "../deploy/synth.ts";
import {
  freePort,
  listening,
  runGeneratedContainers,
  ttgEntrypoint,
  waitUntilListening,
} from "./helpers.ts";
import { assertSweepNeedsCa, makeCertificates } from "./tls_certs.ts";

const SERVER_SCRIPT = "/usr/lib/rabbitmq/bin/rabbitmq-server";

function whyNotUsable(): string | undefined {
  try {
    Deno.statSync(SERVER_SCRIPT);
  } catch {
    return `${SERVER_SCRIPT} is not installed`;
  }
  if (Deno.uid() !== 0) return "a private RabbitMQ node needs root here (the server scripts)";
  try {
    Deno.statSync("/usr/bin/openssl");
  } catch {
    return "openssl is not installed";
  }
  return undefined;
}

const notUsable = whyNotUsable();
if (notUsable) console.log(`rabbitmq TLS tests skipped: ${notUsable}`);

/** A RabbitMQ node of its own (name, directories, cookie, ports), stopped and removed by stop(). */
class PrivateRabbitNode {
  readonly #child: Deno.ChildProcess;
  readonly #dir: string;

  private constructor(child: Deno.ChildProcess, dir: string) {
    this.#child = child;
    this.#dir = dir;
  }

  /** Starts a node with `conf` as its rabbitmq.conf; resolves once `port` accepts connections. */
  static async start(dir: string, conf: string, port: number): Promise<PrivateRabbitNode> {
    await Deno.writeTextFile(`${dir}/rabbitmq.conf`, conf);
    await Deno.writeTextFile(`${dir}/enabled_plugins`, "[rabbitmq_management].\n");
    const child = new Deno.Command(SERVER_SCRIPT, {
      env: {
        HOME: dir,
        RABBITMQ_NODENAME: `ttg-tls-${crypto.randomUUID().slice(0, 8)}@localhost`,
        RABBITMQ_DIST_PORT: String(freePort()),
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
    const node = new PrivateRabbitNode(child, dir);
    try {
      await waitUntilListening(port);
    } catch (error) {
      await node.stop();
      throw error;
    }
    return node;
  }

  /** SIGTERM (the script stops the node), then SIGKILL of the VM if it has not stopped in 30 s. */
  async stop(): Promise<void> {
    this.#child.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stopped = await Promise.race([
      this.#child.status.then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 30_000)),
    ]);
    clearTimeout(timer);
    if (!stopped) {
      const pid = Number(await Deno.readTextFile(`${this.#dir}/rabbitmq.pid`).catch(() => ""));
      if (pid > 0) Deno.kill(pid, "SIGKILL");
      this.#child.kill("SIGKILL");
      await this.#child.status;
    }
  }
}

Deno.test({
  name:
    "rabbitmq over TLS: the generated listener config (AMQP and management), ttg run over amqps://, and a deployment's containers with their generated env",
  ignore: notUsable !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ttg-rabbitmq-tls-" });
    // The Secret's keys, as cert-manager names them.
    await makeCertificates(dir);
    await Deno.copyFile(`${dir}/server.crt`, `${dir}/tls.crt`);
    await Deno.copyFile(`${dir}/server.key`, `${dir}/tls.key`);
    const { manifests } = synth({
      backend: "rabbitmq",
      tls: { secretName: "broker-tls" },
      rabbitmq: { queueType: "quorum" },
      job: { id: "tls-k8s", params: 400, chunkSize: 20, workMs: 0 },
      workers: { count: 2, idleTimeoutSeconds: 1 },
    }, { randomSecret: () => "not-used-locally-0001" });
    const configMap = manifests.find((m) => m.object.kind === "ConfigMap")!.object as unknown as {
      data: Record<string, string>;
    };
    const port = freePort();
    const managementPort = freePort();
    // The generated file, with the Secret's mount path and the ports of this machine.
    const conf = configMap.data["tls.conf"]!.replaceAll(TLS_DIR, dir)
      .replace("listeners.ssl.default = 5671", `listeners.ssl.default = ${port}`)
      .replace("management.ssl.port = 15671", `management.ssl.port = ${managementPort}`);
    const plainManagementFree = !(await listening(15672));
    const node = await PrivateRabbitNode.start(dir, conf, port);
    try {
      // The management API answers over HTTPS, verified with the CA; no plain HTTP listener.
      await waitUntilListening(managementPort);
      const client = Deno.createHttpClient({
        caCerts: [await Deno.readTextFile(`${dir}/ca.crt`)],
      });
      try {
        const overview = await fetch(`https://localhost:${managementPort}/api/overview`, {
          client,
          headers: { authorization: `Basic ${btoa("guest:guest")}` },
        });
        assert.equal(overview.status, 200);
        assert.ok((await overview.json()).management_version);
      } finally {
        client.close();
      }
      if (plainManagementFree) {
        assert.equal(await listening(15672), false, "a plain HTTP management listener is open");
      }

      await assertSweepNeedsCa(
        "rabbitmq",
        `amqps://guest:guest@127.0.0.1:${port}`,
        `${dir}/ca.crt`,
      );

      // The deployment's containers: only what the kubelet and this machine decide differs
      // (the port, the CA's mount path, and the local node's localhost-only guest account).
      const plan = localPlan(manifests, {
        entrypoint: ttgEntrypoint(),
        secretOverrides: {
          "ttg-rabbitmq-auth/username": "guest",
          "ttg-rabbitmq-auth/password": "guest",
        },
      });
      const local = { RABBITMQ_PORT: String(port), TTG_TLS_CA_FILE: `${dir}/ca.crt` };
      for (const p of [...plan.submit, ...plan.workers, ...plan.report]) {
        assert.equal(p.env.RABBITMQ_TLS, "true", p.name);
        assert.equal(p.env.TTG_RABBITMQ_QUEUE_TYPE, "quorum", p.name);
      }
      const k8sReport = await runGeneratedContainers(plan, local);
      assert.match(k8sReport, /chunks +20\/20 completed, 0 dead-lettered/);
    } finally {
      await node.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
