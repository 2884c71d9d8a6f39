import { positionOf, type ChangeFrame, type HistoryFrame, type MessageFrame, type SequenceFrame } from "../protocol";
import type { History } from "./history";

/** Splits entries into the messages and the changes a history frame or page carries. */
export function split(entries: SequenceFrame[]): { messages: MessageFrame[]; changes: ChangeFrame[] } {
  const messages: MessageFrame[] = [];
  const changes: ChangeFrame[] = [];
  for (const entry of entries) {
    if (entry.type === "message") messages.push(entry);
    else changes.push(entry);
  }
  return { messages, changes };
}

/** Where a history frame starts: after `since` on a resume (from the history named `epoch`), else the recent messages. */
export interface ReplayFrom {
  since: number | null;
  epoch: string | null;
}

/**
 * A history frame: on a resume every entry after `since` (see `after`); for a fresh
 * join, a `since` the room never reached or a history that is gone (another
 * epoch), the latest `recent`. Never more than `max` messages in one frame,
 * with `more` when messages up to `lastSeq` were left for the next request.
 */
export function replay(history: History, from: ReplayFrom, recent: number, max: number, epoch: string): HistoryFrame {
  const { lastSeq, oldestSeq } = history;
  const { since } = from;
  // An empty history has nothing a resume could miss, whatever its epoch.
  const otherEpoch = from.epoch !== null && from.epoch !== epoch && since !== null && since > 0;
  const reset = since !== null && (since > lastSeq || otherEpoch);
  const resume = since !== null && !reset;
  const entries = resume ? history.after(since, max) : history.latest(Math.min(recent, max));
  const last = entries.at(-1);
  return {
    type: "history",
    ...split(entries),
    oldestSeq,
    lastSeq,
    gap: resume && history.trimmedAfter(since),
    reset,
    // Fewer than asked for means none was left; entries left out as already applied do not count.
    more: resume && entries.length === max && positionOf(last!) < lastSeq,
    epoch,
  };
}
