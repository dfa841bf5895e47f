import assert from "node:assert/strict";
import { ConfigError } from "../errors.ts";
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

Deno.test("settings: with no backend named, the broker URL's scheme chooses it; a named one that disagrees names both", () => {
  const backend = (flags: Record<string, string>, vars: Record<string, string> = {}) =>
    resolveSettings(flags, env(vars)).backend;
  assert.equal(backend({ brokerUrl: "redis://127.0.0.1:1" }), "redis");
  assert.equal(backend({ brokerUrl: "rediss://cache:6380" }), "redis");
  assert.equal(backend({ brokerUrl: "amqp://u:p@mq:5672" }), "rabbitmq");
  assert.equal(backend({ brokerUrl: "amqps://u:p@mq" }), "rabbitmq");
  assert.equal(backend({}, { TTG_BROKER_URL: "rediss://cache:6380" }), "redis");
  assert.equal(backend({}, { REDIS_URL: "redis://cache:6379" }), "redis");
  assert.equal(backend({}, { AMQP_URL: "amqp://u:p@mq" }), "rabbitmq");
  assert.equal(backend({}, { RABBITMQ_URL: "amqp://u:p@mq" }), "rabbitmq");
  assert.equal(backend({}, {}), "sqlite");
  // A backend that is named wins over the other backends' variables, and agrees with its URL.
  const both = { REDIS_URL: "redis://cache:6379", AMQP_URL: "amqp://u:p@mq" };
  assert.equal(backend({ backend: "redis" }, both), "redis");
  assert.equal(backend({}, { ...both, QUEUE_BACKEND: "rabbitmq" }), "rabbitmq");
  assert.equal(
    resolveSettings({ backend: "redis", brokerUrl: "redis://cache:1" }, env({})).brokerUrl,
    "redis://cache:1",
  );
  const fails = (flags: Record<string, string>, vars: Record<string, string>, message: string) =>
    assert.throws(
      () => resolveSettings(flags, env(vars)),
      (e: unknown) => e instanceof ConfigError && e.message === message,
      message,
    );
  fails(
    { backend: "sqlite", brokerUrl: "redis://127.0.0.1:1" },
    {},
    'Invalid --broker-url "redis://127.0.0.1:1": a redis:// URL is for backend redis, but --backend is "sqlite"',
  );
  fails(
    { brokerUrl: "redis://u:pw@cache:6379" },
    { TTG_BACKEND: "rabbitmq" },
    'Invalid --broker-url "redis://u:***@cache:6379": a redis:// URL is for backend redis, but TTG_BACKEND is "rabbitmq"',
  );
  fails(
    { backend: "redis" },
    { TTG_BROKER_URL: "amqps://u:p@mq" },
    'Invalid TTG_BROKER_URL "amqps://u:***@mq": an amqps:// URL is for backend rabbitmq, but --backend is "redis"',
  );
  fails(
    { backend: "sqlite", brokerUrl: "nonsense" },
    {},
    'Invalid --broker-url "nonsense": --backend "sqlite" takes no broker URL',
  );
  fails(
    { brokerUrl: "http://x" },
    {},
    'Invalid --broker-url "http://x": expected a URL starting with redis://, rediss://, amqp:// or amqps://',
  );
  fails(
    {},
    both,
    "Missing --backend: REDIS_URL and AMQP_URL are both set, so the URL cannot choose the broker",
  );
});

Deno.test("settings: --args and TTG_ARGS give the job's arguments, a JSON object; anything else is one line", () => {
  assert.deepEqual(resolveSettings({}, env({})).args, {});
  assert.deepEqual(resolveSettings({ args: '{"bad": true, "n": [1, 2]}' }, env({})).args, {
    bad: true,
    n: [1, 2],
  });
  assert.deepEqual(
    resolveSettings({}, env({ TTG_ARGS: '{\n  "threshold": 0.5\n}' })).args,
    { threshold: 0.5 },
  );
  assert.deepEqual(
    resolveSettings({ args: '{"a": 1}' }, env({ TTG_ARGS: '{"b": 2}' })).args,
    { a: 1 },
    "the flag wins",
  );
  const fails = (flags: Record<string, string>, vars: Record<string, string>, message: string) =>
    assert.throws(
      () => resolveSettings(flags, env(vars)),
      (e: unknown) => e instanceof ConfigError && e.message === message,
      message,
    );
  const expected = 'expected a JSON object such as {"bad": true}';
  fails({ args: "[1, 2]" }, {}, `Invalid --args "[1, 2]": ${expected}, got an array`);
  fails({ args: "null" }, {}, `Invalid --args "null": ${expected}, got null`);
  fails({}, { TTG_ARGS: "42" }, `Invalid TTG_ARGS "42": ${expected}, got number`);
  fails(
    { args: "{bad: true}" },
    {},
    `Invalid --args "{bad: true}": ${expected}, got invalid JSON (Expected property name or '}' in JSON at position 1 (line 1 column 2))`,
  );
  fails(
    {},
    { TTG_ARGS: '{\n  "work_ms": 5\n}' },
    `Invalid TTG_ARGS "{ "work_ms": 5 }": ${expected}, without "work_ms" (set it with --work-ms)`,
  );
});

Deno.test("settings: --cmd is a shell command line, or with a JSON array the argv itself; --reduce, --cmd-env, --cmd-sandbox", () => {
  const shell = resolveSettings({ cmd: "python3 sim.py --fast" }, env({}));
  assert.deepEqual(shell.command, ["/bin/sh", "-c", "python3 sim.py --fast"]);
  assert.equal(shell.reduce, "sum");
  const exact = resolveSettings(
    {},
    env({
      TTG_CMD: '["python3", "/app/sim.py"]',
      TTG_REDUCE: "concat",
      TTG_CMD_ENV: "HOME, OMP_NUM_THREADS",
      TTG_CMD_SANDBOX: "true",
    }),
  );
  assert.deepEqual(exact.command, ["python3", "/app/sim.py"]);
  assert.equal(exact.reduce, "concat");
  assert.deepEqual(exact.commandEnv, ["HOME", "OMP_NUM_THREADS"]);
  assert.equal(exact.commandSandbox, true);
  assert.deepEqual(resolveSettings({}, env({})).command, []);
  const bad: [Record<string, string>, Record<string, string>, RegExp][] = [
    [
      { cmd: '["python3", 3]' },
      {},
      /^Invalid --cmd "\["python3", 3\]": expected a command line, or a JSON array of strings/,
    ],
    [{}, { TTG_CMD: "[]" }, /^Invalid TTG_CMD "\[\]"/],
    [{ reduce: "avg" }, {}, /^Invalid --reduce "avg": expected one of sum, concat, count$/],
    [{ cmdEnv: "A,B-C" }, {}, /^Invalid --cmd-env "A,B-C": expected environment variable names/],
    [
      { cmd: "sim", job: "./job.ts" },
      {},
      /a job is a module \(--job\) or a command \(--cmd\), not both/,
    ],
  ];
  for (const [flags, vars, message] of bad) {
    assert.throws(() => resolveSettings(flags, env(vars)), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, message);
      return true;
    });
  }
});
