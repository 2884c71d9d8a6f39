// What a long-running `wrangler dev` prints, held in bounded memory: a
// benchmark's trace can run to gigabytes, more than one string can hold.
// Plain fields rather than parameter properties: the benchmark runs this
// file in Node, which only strips types.

/** The last `limit` characters of a stream: enough to say why a server failed, however long it ran. */
export class Tail {
  readonly limit: number;
  #text = "";

  constructor(limit: number) {
    this.limit = limit;
  }

  push(chunk: string): void {
    this.#text += chunk;
    // Cut only at twice the limit, so that a stream of small chunks is not copied at each one.
    if (this.#text.length > 2 * this.limit) this.#text = this.#text.slice(-this.limit);
  }

  /** Characters held: never more than twice the limit. */
  get held(): number {
    return this.#text.length;
  }

  toString(): string {
    return this.#text.slice(-this.limit);
  }
}

/**
 * Splits a stream into lines as its chunks arrive, without the line ends. A
 * line still unfinished is held up to `limit` characters: one longer than
 * that loses its start, so that a stream without line ends cannot grow it
 * without bound.
 */
export class LineSplitter {
  readonly limit: number;
  readonly #emit: (line: string) => void;
  #partial = "";

  constructor(limit: number, emit: (line: string) => void) {
    this.limit = limit;
    this.#emit = emit;
  }

  push(chunk: string): void {
    const lines = (this.#partial + chunk).split("\n");
    this.#partial = lines.pop()!.slice(-this.limit);
    for (const line of lines) this.#emit(line);
  }

  /** The stream ended: its last line counts even without a line end. */
  end(): void {
    if (this.#partial !== "") this.#emit(this.#partial);
    this.#partial = "";
  }
}
