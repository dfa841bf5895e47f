/**
 * Helpers of the handler-process tests: the Python fixtures, the README's Python job and the
 * process table.
 *
 * @module
 */

/** The misbehaving Python handler (its first argument picks how). */
export const QUIRKY = new URL("./fixtures/python/quirky.py", import.meta.url).pathname;
/** The Python port of ttg.sweep that TTG ships. */
export const PY_SWEEP = new URL("../jobs/python/sweep.py", import.meta.url).pathname;
/** The folder of the Python adapter (`ttg_handler.py`), for `PYTHONPATH`. */
export const PY_ADAPTER_DIR = new URL("../jobs/python", import.meta.url).pathname;

/** The README's Python job (the code block that starts with `# squares.py`). */
export async function readmePythonJob(): Promise<string> {
  const text = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const block = /```python\n(# squares\.py\n[\s\S]*?)```/.exec(text);
  if (!block) throw new Error("The README shows no squares.py");
  return block[1]!;
}

/**
 * The Python interpreter itself (`python3` may be a launcher script, such as pyenv's shim, that
 * adds variables of its own to the environment and a process to the tree).
 */
export const PYTHON: string = new TextDecoder().decode(
  new Deno.Command("python3", {
    args: ["-c", "import sys; print(sys.executable)"],
    stdout: "piped",
  }).outputSync().stdout,
).trim();

/** `ps -eo pid,ppid,pgid,cmd` (whole command lines): one line per process of the machine. */
export async function processTable(): Promise<string[]> {
  const out = await new Deno.Command("ps", {
    args: ["-eww", "-o", "pid,ppid,pgid,cmd"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").slice(1).filter((l) => l.trim());
}
