/**
 * `deno task manifests --backend redis|rabbitmq [--mode queue|static] [--workers N] [--out DIR]`
 * prints the generated YAML, or writes one file per object into DIR (prefixed in apply order,
 * so `kubectl apply -f DIR` applies them in order).
 *
 * @module
 */
import "./node_warnings.ts";
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  fileName,
  MANIFEST_STAGES,
  objectYaml,
  stageObjects,
  synth,
  toYaml,
  YAML_HEADER,
} from "../deploy/synth.ts";
import { main } from "./command.ts";
import {
  CONFIG_FLAGS,
  CONFIG_FLAGS_USAGE,
  FLAG_FOR_FIELD,
  propsFromFlags,
} from "./config_flags.ts";

const USAGE = `Usage: deno task manifests [--out DIR] [deployment flags]

Prints the Kubernetes objects of a deployment as YAML (or writes them to DIR).

${CONFIG_FLAGS_USAGE}`;

if (import.meta.main) {
  await main(async () => {
    const { values } = parseArgs({
      args: Deno.args,
      options: { ...CONFIG_FLAGS, out: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const synthesized = synth(propsFromFlags(values));
    const objects = stageObjects(synthesized, MANIFEST_STAGES);
    if (!values.out) {
      console.log(toYaml(objects).trimEnd());
      return 0;
    }
    await Deno.mkdir(values.out, { recursive: true });
    for (const [i, object] of objects.entries()) {
      const path = join(values.out, fileName(i, object));
      await Deno.writeTextFile(path, YAML_HEADER + objectYaml(object));
      console.log(path);
    }
    return 0;
  }, FLAG_FOR_FIELD);
}
