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
import { PrivateRabbitNode, whyNoPrivateNode } from "./rabbitmq_node.ts";
import { assertSweepNeedsCa, makeCertificates } from "./tls_certs.ts";

function whyNotUsable(): string | undefined {
  const why = whyNoPrivateNode();
  if (why) return why;
  try {
    Deno.statSync("/usr/bin/openssl");
  } catch {
    return "openssl is not installed";
  }
  return undefined;
}

const notUsable = whyNotUsable();
if (notUsable) console.log(`rabbitmq TLS tests skipped: ${notUsable}`);

Deno.test({
  name:
    "rabbitmq over TLS: the generated listener config (AMQP and management), ttg run over amqps://, and a deployment's containers with their generated env",
  ignore: notUsable !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
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
    const node = await PrivateRabbitNode.start({
      dir,
      conf,
      port,
      plugins: ["rabbitmq_management"],
    });
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
      assert.match(k8sReport, /chunks +20 planned → 20 completed, 0 dead-lettered/);
    } finally {
      await node.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
