/**
 * A TCP fault proxy for the chaos suite: it forwards a worker's connections to its broker and,
 * on command, adds latency or partitions them. A partition holds every byte in both directions
 * (as TCP retransmission would) and keeps both sides open until it heals, so the worker keeps
 * computing and its broker sees silence; on heal, everything held arrives late, in order.
 *
 * @module
 */

interface Pipe {
  readonly from: Deno.Conn;
  readonly to: Deno.Conn;
}

/** Forwards 127.0.0.1:`port` to `target`. */
export class FaultProxy implements AsyncDisposable {
  readonly port: number;
  readonly #listener: Deno.Listener;
  readonly #target: { hostname: string; port: number };
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  #latencyMs = 0;
  #partitioned = false;
  #wake: (() => void)[] = [];
  #closed = false;

  /** Listens on a free port of 127.0.0.1 and forwards to `target`. */
  constructor(target: { hostname: string; port: number }) {
    this.#target = target;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#track(this.#accept());
  }

  /** Delays every forwarded read by `ms` (0 removes the delay). */
  latency(ms: number): void {
    this.#latencyMs = ms;
  }

  /** Holds every byte in both directions until {@linkcode heal}. */
  partition(): void {
    this.#partitioned = true;
  }

  /** Delivers what was held and forwards again. */
  heal(): void {
    this.#partitioned = false;
    for (const wake of this.#wake.splice(0)) wake();
  }

  /** Closes every connection and the listener; waits for the forwarding tasks to end. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.heal();
    try {
      this.#listener.close();
    } catch { /* closed */ }
    for (const conn of this.#conns) closeQuietly(conn);
    await Promise.allSettled([...this.#tasks]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #accept(): Promise<void> {
    for (;;) {
      let inbound: Deno.Conn;
      try {
        inbound = await this.#listener.accept();
      } catch {
        return; // closed
      }
      this.#conns.add(inbound);
      let outbound: Deno.Conn;
      try {
        outbound = await Deno.connect(this.#target);
      } catch {
        this.#conns.delete(inbound);
        closeQuietly(inbound);
        continue;
      }
      this.#conns.add(outbound);
      this.#track(this.#forward({ from: inbound, to: outbound }));
      this.#track(this.#forward({ from: outbound, to: inbound }));
    }
  }

  async #waitHealed(): Promise<void> {
    while (this.#partitioned && !this.#closed) {
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  async #forward(pipe: Pipe): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        let n: number | null;
        try {
          n = await pipe.from.read(buffer);
        } catch {
          n = null;
        }
        if (n === null) break;
        const bytes = buffer.slice(0, n);
        if (this.#latencyMs > 0) await new Promise((r) => setTimeout(r, this.#latencyMs));
        await this.#waitHealed();
        try {
          await writeAll(pipe.to, bytes);
        } catch {
          break;
        }
      }
      // A side that closed during a partition closes the other only once it heals.
      await this.#waitHealed();
    } finally {
      for (const conn of [pipe.from, pipe.to]) {
        this.#conns.delete(conn);
        closeQuietly(conn);
      }
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* closed already */ }
}
