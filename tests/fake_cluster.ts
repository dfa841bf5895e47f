/**
 * What the tests of the Kubernetes tasks run them with: a task script run as `deno task` would,
 * and a directory of fake `kubectl`, `kind` and `docker` programs that log their argv and stdin
 * and answer the few reads the tasks make.
 *
 * @module
 */

/** Runs a task script as `deno task` would, with a PATH. */
export async function task(script: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(`../tasks/${script}`, import.meta.url).pathname, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** A directory with fake `kubectl`, `kind` and `docker` programs that log their argv and stdin. */
export async function fakeCluster() {
  const dir = await Deno.makeTempDir();
  const script = `#!/bin/bash
printf '%s\\n' "$*" >> "${dir}/calls.log"
input=$(cat)
if [ -n "$input" ]; then n=$(ls "${dir}" | grep -c '^stdin-'); printf '%s' "$input" > "${dir}/stdin-$n.yaml"; fi
case "$(basename "$0") $*" in
  "kind get clusters") echo ttg ;;
  "kubectl get --raw /readyz"*) echo ok ;;
  "kubectl config current-context") echo kind-ttg ;;
  "kubectl get namespace prod"*) printf '{"kubernetes.io/metadata.name":"prod"}' ;;
  "kubectl get secret ttg-redis-auth"*) printf '{"password":"%s"}' "$(printf existing-cluster-password | base64)" ;;
  "kubectl get pods"*) printf 'ttg-worker-1 ttg-worker-0 ttg-worker-2' ;;
  "kubectl logs job/ttg-report-progress"*)
    if [ -e "${dir}/progressed" ]; then c=100; else c=40; touch "${dir}/progressed"; fi
    echo '{"level":"INFO","message":"connected"}'
    echo '{"job_id":"ttg","job":{"total_chunks":100},"stats":{"completed":'$c',"dead_lettered":0,"duplicates":1}}' ;;
  "kubectl logs job/ttg-report"*) cat "${dir}/report.txt" 2>/dev/null || echo "REPORT 100/100 completed" ;;
  "kubectl logs --selector="*) cat "${dir}/shares.txt" ;;
esac
`;
  for (const name of ["kubectl", "kind", "docker"]) {
    await Deno.writeTextFile(`${dir}/${name}`, script);
    await Deno.chmod(`${dir}/${name}`, 0o755);
  }
  return {
    env: { PATH: `${dir}:/usr/bin:/bin` },
    dir,
    calls: async () => (await Deno.readTextFile(`${dir}/calls.log`)).trim().split("\n"),
    stdin: (n: number) => Deno.readTextFile(`${dir}/stdin-${n}.yaml`),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}
