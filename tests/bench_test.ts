/** `deno task bench`: its flags, in the manner of every other task (benchmarks are not tests). */
import assert from "node:assert/strict";
import { parseBenchArgs } from "../bench/main.ts";

async function bench(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../bench/main.ts", import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("deno task bench --help prints its usage and runs nothing", async () => {
  const { code, stdout, stderr } = await bench(["--help"]);
  assert.equal(code, 0, stderr);
  assert.match(
    stdout,
    /^Usage: deno task bench \[--only LIST\] \[--chunks N\] \[--runs N\] \[--brokers LIST\] \[--write\]/,
  );
  for (const section of ["load", "fleet", "scale", "memory"]) {
    assert.match(stdout, new RegExp(section));
  }
  assert.equal(stderr, "");
});

Deno.test("deno task bench: bad input is one line and exit code 2, before any section runs", async () => {
  const sections = "sqlite, redis, rabbitmq, process, metrics, load, fleet, scale or memory";
  const cases: [string[], string][] = [
    [["--only", "redsi"], `Invalid "--only": expected ${sections} (comma-separated), got "redsi"`],
    [
      ["--only", "sqlite,"],
      `Invalid "--only": expected ${sections} (comma-separated), got "sqlite,"`,
    ],
    [["--only"], "Option '--only <value>' argument missing"],
    [["--chunks", "0"], 'Invalid "--chunks": expected a whole number above 0, got "0"'],
    [["--chunks"], "Option '--chunks <value>' argument missing"],
    [["--runs", "1.5"], 'Invalid "--runs": expected a whole number above 0, got "1.5"'],
    [["--runs"], "Option '--runs <value>' argument missing"],
    [
      ["--only", "scale", "--brokers", "redis,kafka"],
      'Invalid "--brokers": expected sqlite, redis or rabbitmq (comma-separated), got "redis,kafka"',
    ],
    [["--brokers"], "Option '--brokers <value>' argument missing"],
    [["--write=yes"], "Option '--write' does not take an argument"],
    [["--nope"], "Unknown option '--nope'"],
  ];
  for (const [args, line] of cases) {
    const { code, stdout, stderr } = await bench(args);
    assert.deepEqual([code, stdout, stderr], [2, "", `${line}\n`], args.join(" "));
  }
});

Deno.test("parseBenchArgs() picks the sections in their own order, every one but scale and memory by default", () => {
  assert.deepEqual(parseBenchArgs([]), {
    help: false,
    sections: ["sqlite", "redis", "rabbitmq", "process", "metrics", "load", "fleet"],
    chunks: undefined,
    runs: undefined,
    brokers: undefined,
    write: false,
  });
  assert.deepEqual(parseBenchArgs(["--only", "rabbitmq,sqlite", "--chunks", "500"]), {
    help: false,
    sections: ["sqlite", "rabbitmq"],
    chunks: 500,
    runs: undefined,
    brokers: undefined,
    write: false,
  });
});

Deno.test("parseBenchArgs() reads the load, fleet and scale sections' runs, brokers and --write", () => {
  assert.deepEqual(
    parseBenchArgs([
      "--only",
      "scale,fleet,load",
      "--runs",
      "5",
      "--brokers",
      "redis, sqlite",
      "--chunks",
      "20000",
      "--write",
    ]),
    {
      help: false,
      sections: ["load", "fleet", "scale"],
      chunks: 20000,
      runs: 5,
      brokers: ["sqlite", "redis"],
      write: true,
    },
  );
  assert.deepEqual(parseBenchArgs(["--only", "scale"]).sections, ["scale"]);
});
