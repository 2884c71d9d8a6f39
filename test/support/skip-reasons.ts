import type { Reporter, TestModule, Vitest } from "vitest/node";

/**
 * Lists, at the end of a run, every test skipped with a reason (`skip(note)`
 * in the test): the default reporter shows such reasons only for a lone file
 * on a terminal, and `silent: "passed-only"` hides whatever a skipped file
 * logs, so without this a missing Chromium would skip the browser tests
 * without a word.
 */
export default class SkipReasons implements Reporter {
  #vitest: Vitest | undefined;

  onInit(vitest: Vitest): void {
    this.#vitest = vitest;
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const lines: string[] = [];
    for (const module of testModules) {
      for (const test of module.children.allTests("skipped")) {
        const result = test.result();
        if (result.state === "skipped" && result.note !== undefined) lines.push(`  ${module.relativeModuleId} > ${test.fullName}: ${result.note}`);
      }
    }
    if (lines.length > 0) this.#vitest!.logger.log(["", "Skipped, and why:", ...lines, ""].join("\n"));
  }
}
