// How `npm run bench` shows what it measured: a table per scenario, room
// beside baseline with their ratio, then one JSON line per scenario.
import type { Metrics } from "./measure.ts";

export interface Result {
  scenario: string;
  room: Metrics;
  relay: Metrics;
  /** A third column, compared with the first as the second is. */
  third?: Metrics;
  /** What the columns are, when not the room and the relay. */
  columns?: [string, string] | [string, string, string];
}

const show = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? "—" : Number.isInteger(v) ? String(v) : v.toFixed(1));
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b !== 0 ? (a / b).toFixed(2) : "—");

/** Prints the tables, then the JSON lines, rounded to a tenth. */
export function report(results: Result[]): void {
  for (const result of results) {
    const columns = result.columns ?? ["room", "relay"];
    const values = [result.room, result.relay, ...(result.third === undefined ? [] : [result.third])];
    // The first column against each other: room ÷ relay, or ÷ each of two others.
    const ratios = values.slice(1).map((_, i) => (values.length === 2 ? "ratio" : `1st÷${["2nd", "3rd"][i]}`));
    const header = [...columns.map((c) => c.padStart(10)), ...ratios.map((r) => r.padStart(7))];
    console.log(`\n${result.scenario}\n| ${"metric".padEnd(22)} | ${header.join(" | ")} |\n|${"---|".repeat(header.length + 1)}`);
    for (const key of Object.keys(result.room)) {
      const cells = [...values.map((m) => show(m[key]).padStart(10)), ...values.slice(1).map((m) => ratio(result.room[key], m[key]).padStart(7))];
      console.log(`| ${key.padEnd(22)} | ${cells.join(" | ")} |`);
    }
  }
  console.log("");
  const round = (metrics: Metrics) => Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, Math.round(v * 10) / 10]));
  for (const result of results) {
    const line: Record<string, unknown> = { scenario: result.scenario, room: round(result.room), relay: round(result.relay) };
    if (result.third !== undefined) line.third = round(result.third);
    if (result.columns !== undefined) line.columns = result.columns;
    console.log(JSON.stringify(line));
  }
}
