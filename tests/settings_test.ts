import assert from "node:assert/strict";
import { ConfigError } from "../brokers/errors.ts";
import { resolveSettings } from "../workers/settings.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("settings: flags win over environment, which wins over defaults", () => {
  const s = resolveSettings({ workMs: "3" }, env({ TTG_WORK_MS: "7", CHUNK_SIZE: "50" }));
  assert.equal(s.workMs, 3);
  assert.equal(s.chunkSize, 50);
  assert.equal(s.params, 10_000);
  assert.equal(s.backend, "sqlite");
});

Deno.test("settings: the predecessor's environment names are accepted", () => {
  const s = resolveSettings(
    {},
    env({
      WORKER_ID: "worker-7",
      QUEUE_BACKEND: "redis",
      TOTAL_PARAMETERS: "5000",
      CHUNK_SIZE: "25",
      SIMULATE_WORK_MS: "1",
      IDLE_TIMEOUT_SECONDS: "30",
      STALE_THRESHOLD_MS: "60000",
      SIMULATE_FAULT_RATE: "0.1",
      LOG_LEVEL: "warning",
      LOG_FORMAT: "json",
      REDIS_HOST: "ttg-redis",
      REDIS_PORT: "6380",
    }),
  );
  assert.equal(s.workerId, "worker-7");
  assert.equal(s.backend, "redis");
  assert.equal(s.params, 5000);
  assert.equal(s.chunkSize, 25);
  assert.equal(s.workMs, 1);
  assert.equal(s.idleTimeoutMs, 30_000);
  assert.equal(s.leaseMs, 60_000);
  assert.equal(s.faultRate, 0.1);
  assert.equal(s.logLevel, "WARNING");
  assert.equal(s.logFormat, "json");
  assert.equal(s.brokerUrl, "redis://ttg-redis:6380");
});

Deno.test("settings: a bad value is a ConfigError naming the setting and the value", () => {
  const cases: [Record<string, string>, Record<string, string>, RegExp][] = [
    [{ workers: "abc" }, {}, /^Invalid --workers "abc": expected a whole number from 1 to 256$/],
    [{}, { CHUNK_SIZE: "0" }, /^Invalid CHUNK_SIZE "0"/],
    [{ faultRate: "1.5" }, {}, /^Invalid --fault-rate "1.5"/],
    [
      { backend: "kafka" },
      {},
      /^Invalid --backend "kafka": expected one of sqlite, redis, rabbitmq$/,
    ],
    [{}, { LOG_FORMAT: "xml" }, /^Invalid LOG_FORMAT "xml"/],
    [{ brokerUrl: "http://x" }, { TTG_BACKEND: "redis" }, /^Invalid --broker-url "http:\/\/x"/],
    [{ leaseMs: "1000", heartbeatMs: "800" }, {}, /^Invalid --heartbeat-ms "800"/],
    [{ jobId: "bad id!" }, {}, /^Invalid --job-id "bad id!"/],
  ];
  for (const [flags, vars, message] of cases) {
    assert.throws(() => resolveSettings(flags, env(vars)), (e: unknown) => {
      assert.ok(
        e instanceof ConfigError,
        `expected ConfigError for ${JSON.stringify(flags)} ${JSON.stringify(vars)}`,
      );
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("settings: RabbitMQ credentials never default to guest/guest outside localhost", () => {
  assert.match(
    resolveSettings({ backend: "rabbitmq" }, env({})).brokerUrl,
    /^amqp:\/\/guest:guest@127\.0\.0\.1:5672$/,
  );
  assert.throws(
    () => resolveSettings({ backend: "rabbitmq" }, env({ RABBITMQ_HOST: "ttg-rabbitmq" })),
    /RABBITMQ_USER/,
  );
  const s = resolveSettings(
    { backend: "rabbitmq" },
    env({
      RABBITMQ_HOST: "mq",
      RABBITMQ_USER: "ttg",
      RABBITMQ_PASSWORD: "s3cr:t",
      RABBITMQ_VHOST: "jobs",
    }),
  );
  assert.equal(s.brokerUrl, "amqp://ttg:s3cr%3At@mq:5672/jobs");
});

Deno.test("settings: REDIS_TLS and RABBITMQ_TLS turn host-and-port settings into rediss:// and amqps://", () => {
  const redis = (vars: Record<string, string>) =>
    resolveSettings({ backend: "redis" }, env({ REDIS_HOST: "cache", ...vars })).brokerUrl;
  assert.equal(redis({ REDIS_TLS: "true", REDIS_PASSWORD: "pw" }), "rediss://:pw@cache:6379");
  assert.equal(redis({ REDIS_TLS: "0" }), "redis://cache:6379");
  const rabbit = (vars: Record<string, string>) =>
    resolveSettings(
      { backend: "rabbitmq" },
      env({ RABBITMQ_HOST: "mq", RABBITMQ_USER: "ttg", RABBITMQ_PASSWORD: "pw", ...vars }),
    ).brokerUrl;
  assert.equal(rabbit({ RABBITMQ_TLS: "yes" }), "amqps://ttg:pw@mq:5671");
  assert.equal(rabbit({ RABBITMQ_TLS: "true", RABBITMQ_PORT: "5670" }), "amqps://ttg:pw@mq:5670");
  assert.equal(rabbit({ RABBITMQ_TLS: "false" }), "amqp://ttg:pw@mq:5672");
  assert.throws(
    () => redis({ REDIS_TLS: "maybe" }),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message === 'Invalid REDIS_TLS "maybe": expected true or false',
  );
});

Deno.test("settings: Redis password and user come from the environment, rediss:// URLs pass through", () => {
  assert.equal(
    resolveSettings({ backend: "redis" }, env({ REDIS_PASSWORD: "pw", REDIS_USERNAME: "ttg" }))
      .brokerUrl,
    "redis://ttg:pw@127.0.0.1:6379",
  );
  assert.equal(
    resolveSettings({ backend: "redis" }, env({ REDIS_URL: "rediss://u:p@cache:6380" })).brokerUrl,
    "rediss://u:p@cache:6380",
  );
});

Deno.test("settings: TLS files are read from flags or environment; a bad one names its flag", () => {
  const files: Record<string, string> = {
    "/certs/ca.pem": "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
    "/certs/client.pem": "-----BEGIN CERTIFICATE-----\nme\n-----END CERTIFICATE-----\n",
    "/certs/client.key": "-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n",
    "/certs/notes.txt": "not a certificate",
  };
  const read = (path: string) => {
    if (!(path in files)) throw new Deno.errors.NotFound(path);
    return files[path]!;
  };
  const tlsRedis = { TTG_BACKEND: "redis", REDIS_URL: "rediss://cache.example:6380" };
  const s = resolveSettings(
    { tlsCa: "/certs/ca.pem" },
    env({
      ...tlsRedis,
      TTG_TLS_CERT_FILE: "/certs/client.pem",
      TTG_TLS_KEY_FILE: "/certs/client.key",
    }),
    {},
    read,
  );
  assert.deepEqual(s.tls, {
    ca: files["/certs/ca.pem"],
    cert: files["/certs/client.pem"],
    key: files["/certs/client.key"],
  });
  assert.deepEqual(s.tlsFiles, {
    ca: "/certs/ca.pem",
    cert: "/certs/client.pem",
    key: "/certs/client.key",
  });
  assert.equal(resolveSettings({}, env(tlsRedis), {}, read).tls, undefined);
  // SQLite (and ttg static) use no TLS: its settings are not even read.
  assert.equal(resolveSettings({ tlsCa: "/certs/missing.pem" }, env({}), {}, read).tls, undefined);
  const fails = (flags: Record<string, string>, vars: Record<string, string>, pattern: RegExp) =>
    assert.throws(
      () => resolveSettings(flags, env({ ...tlsRedis, ...vars }), {}, read),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
    );
  fails({ tlsCa: "/certs/missing.pem" }, {}, /^Invalid --tls-ca "\/certs\/missing.pem": the file/);
  fails(
    {},
    { TTG_TLS_CA_FILE: "/certs/notes.txt" },
    /^Invalid TTG_TLS_CA_FILE ".*": expected a PEM/,
  );
  fails({ tlsCert: "/certs/client.pem" }, {}, /^Missing --tls-key/);
  fails({ tlsKey: "/certs/client.key" }, {}, /^Missing --tls-cert/);
  // A TLS file with a plain-text URL would send the password in clear: refused, for both brokers.
  fails({ tlsCa: "/certs/ca.pem" }, { REDIS_URL: "redis://cache:6379" }, /need a rediss:\/\/ or/);
  fails(
    { tlsCa: "/certs/ca.pem" },
    { TTG_BACKEND: "rabbitmq", AMQP_URL: "amqp://u:p@mq.example" },
    /^Invalid --tls-ca "\/certs\/ca.pem": TLS files need a rediss:\/\/ or amqps:\/\/ broker URL, not amqp:\/\/$/,
  );
});

Deno.test("settings: the RabbitMQ queue type is classic unless quorum is asked for", () => {
  const rabbit = (vars: Record<string, string>) => env({ TTG_BACKEND: "rabbitmq", ...vars });
  assert.equal(resolveSettings({}, rabbit({})).queueType, "classic");
  assert.equal(
    resolveSettings({}, rabbit({ TTG_RABBITMQ_QUEUE_TYPE: "Quorum" })).queueType,
    "quorum",
  );
  // Other backends never read it.
  assert.equal(resolveSettings({ rabbitmqQueueType: "stream" }, env({})).queueType, "classic");
  assert.throws(
    () => resolveSettings({ rabbitmqQueueType: "stream" }, rabbit({})),
    /^ConfigError: Invalid --rabbitmq-queue-type "stream": expected one of classic, quorum$/,
  );
});
