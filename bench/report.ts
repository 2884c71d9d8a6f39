// How `npm run bench` shows what it measured: a table per scenario, room
// beside baseline with their ratio, then one JSON line per scenario.
import type { Metrics } from "./measure.ts";

export interface Result {
  scenario: string;
  room: Metrics;
  relay: Metrics;
  /** What the two columns are, when not the room and the relay. */
  columns?: [string, string];
}

function row(label: string, room: number | undefined, relay: number | undefined): string {
  const show = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? "—" : Number.isInteger(v) ? String(v) : v.toFixed(1));
  const ratio = room !== undefined && relay !== undefined && relay !== 0 ? (room / relay).toFixed(2) : "—";
  return `| ${label.padEnd(22)} | ${show(room).padStart(10)} | ${show(relay).padStart(10)} | ${ratio.padStart(6)} |`;
}

/** Prints the tables, then the JSON lines, rounded to a tenth. */
export function report(results: Result[]): void {
  for (const result of results) {
    const [left, right] = result.columns ?? ["room", "relay"];
    console.log(`\n${result.scenario}\n| metric                 | ${left.padStart(10)} | ${right.padStart(10)} |  ratio |\n|---|---|---|---|`);
    for (const key of Object.keys(result.room)) console.log(row(key, result.room[key], result.relay[key]));
  }
  console.log("");
  const round = (metrics: Metrics) => Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, Math.round(v * 10) / 10]));
  for (const result of results) console.log(JSON.stringify({ scenario: result.scenario, room: round(result.room), relay: round(result.relay) }));
}
