// A no-op TypeScript job for the process section of the bench: the in-thread figure.
import { defineJob } from "../jobs/define_job.ts";

export default defineJob({
  name: "bench.noop",
  run: (chunk) => ({ count: chunk.end - chunk.start }),
});
