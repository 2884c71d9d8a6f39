/** What a reaction may be: one emoji, as people pick them, or a `:short_name:` for custom ones. */

/** `:thumbsup:`, `:party-parrot:`, `:+1:`: at most 32 characters, colons included. */
const SHORT_NAME = /^:[a-z0-9_+-]{1,30}:$/;

/**
 * One emoji: a pictograph (with its skin tone, variation selector or
 * zero-width joins), a flag (two regional indicators or a tag sequence),
 * or a keycap. Checked as a single grapheme first, so no text rides along.
 */
const EMOJI =
  /^(?:\p{Regional_Indicator}{2}|[0-9#*]\uFE0F?\u20E3|\p{Extended_Pictographic}(?:\uFE0F|\p{Emoji_Modifier}|[\u{E0020}-\u{E007F}]|\u200D\p{Extended_Pictographic})*)[\uFE0F\p{Emoji_Modifier}]*$/u;

/** The longest emoji sequence accepted, in UTF-16 units: family and flag sequences run to about 14. */
const MAX_EMOJI_UNITS = 32;

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

export function isReactionEmoji(value: string): boolean {
  if (SHORT_NAME.test(value)) return true;
  if (value.length === 0 || value.length > MAX_EMOJI_UNITS || !EMOJI.test(value)) return false;
  let count = 0;
  for (const _ of graphemes.segment(value)) if (++count > 1) return false;
  return true;
}
