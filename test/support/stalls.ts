import { relative } from "node:path";
import type { Reporter, TestModule, TestSpecification } from "vitest/node";

/** What a stall report reads of a file: which project ran it, and its tests' states. */
type ModuleSeen = Pick<TestModule, "moduleId"> & { project: { name: string }; children: { allTests(): Iterable<{ result(): { state: string } }> } };

export interface StallsOptions {
  /** How long a run may go on after its last file has reported. Default 120,000 ms; the gap is a second or two. */
  graceMs?: number;
  exit?: (code: number) => void;
  write?: (text: string) => void;
}

const key = (file: { moduleId: string; project: { name: string } }) => `${file.project.name} ${file.moduleId}`;

/**
 * Ends, with exit code 1 and a reason, a run whose every file has reported
 * its tests but which then never ends. Vitest ends a run only when each
 * file's runner says it is done; a runner that never does keeps it waiting
 * for good (a line logged from a Durable Object did, with
 * @cloudflare/vitest-plugin before 1.5.0: cloudflare/workers-sdk#15719),
 * and CI would wait out its 90 minutes without a word.
 */
export default class Stalls implements Reporter {
  readonly #graceMs: number;
  readonly #exit: (code: number) => void;
  readonly #write: (text: string) => void;
  #waiting = new Set<string>();
  #ended: ModuleSeen[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor({ graceMs = 120_000, exit = (code) => process.exit(code), write = (text) => void process.stderr.write(text) }: StallsOptions = {}) {
    this.#graceMs = graceMs;
    this.#exit = exit;
    this.#write = write;
  }

  onTestRunStart(specifications: ReadonlyArray<Pick<TestSpecification, "moduleId"> & { project: { name: string } }>): void {
    clearTimeout(this.#timer);
    this.#waiting = new Set(specifications.map(key));
    this.#ended = [];
  }

  onTestModuleEnd(module: ModuleSeen): void {
    this.#waiting.delete(key(module));
    this.#ended.push(module);
    if (this.#waiting.size > 0) return;
    this.#timer = setTimeout(() => this.#stalled(), this.#graceMs);
    this.#timer.unref?.();
  }

  onTestRunEnd(): void {
    clearTimeout(this.#timer);
  }

  #stalled(): void {
    const states = new Map<string, number>();
    for (const module of this.#ended) {
      for (const test of module.children.allTests()) {
        const { state } = test.result();
        states.set(state, (states.get(state) ?? 0) + 1);
      }
    }
    const counts = [...states].map(([state, count]) => `${count} ${state}`).join(", ");
    const last = this.#ended
      .slice(-3)
      .reverse()
      .map((module) => `  ${relative(process.cwd(), module.moduleId)}${module.project.name ? ` (${module.project.name})` : ""}`);
    this.#write(
      [
        "",
        `Every test file has reported (tests: ${counts}), but the run has not ended in the ${this.#graceMs / 1000} s since the last one:`,
        "a test runner never said it was done, and Vitest would wait for it for good. The files that ended last, the last first:",
        ...last,
        "",
      ].join("\n"),
    );
    this.#exit(1);
  }
}
