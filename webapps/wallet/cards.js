// Several cards in one wallet (issue 12): which card a new batch belongs to,
// when a renewal replaces the old one, when renewal is open, and the move from
// the one-card store.  No DOM, no storage, no clock of its own (callers pass
// `now`, epoch seconds), so node can test it (tests/js/wallet_cards_check.mjs).
import { jstParts } from '../lib/wareki.js';
import { parseIssued, randomToken } from './sdjwt.js';

// The plan's renewal window: from 60 days before the registration ends.
export const RENEW_DAYS = 60;
// One-time credentials live credential_days (30, docs/scale.md §5) unless the
// registration ends sooner; a shorter one therefore shows the registration's end.
const CAPPED_SECONDS = 29 * 86400;
// The keys of a wallet from before several cards (one card), moved into `cards`.
export const SINGLE_CARD_KEYS = ['holder', 'card', 'status', 'batch', 'last', 'refill'];

// exp is the first instant no longer valid; a card shows the last valid day (JST).
export function lastValidDay(exp) {
  return jstParts(exp - 1).iso;
}

// The same registration is the same issuer and the same pairwise `sub`; without
// a `sub` a card matches nothing (never merged into another by mistake).
export function matchKey(issuer, parsed) {
  const sub = parsed.disclosures.find((d) => d.name === 'sub')?.value;
  return `${issuer}|${typeof sub === 'string' ? sub : `?${randomToken(9)}`}`;
}

// The registration's last day when known: from the collection's token answer,
// or from a credential the registration's end cut short; null otherwise.
export function registrationEnd(card, parsed = parseIssued(card.credential)) {
  const p = parsed.payload;
  const last = lastValidDay(p.exp);
  if (card.valid_until && card.valid_until >= last) return card.valid_until;
  if (p.exp - p.iat < CAPPED_SECONDS) return last;
  return null;
}

export function daysUntil(iso, now) {
  const today = jstParts(now).iso;
  return Math.round((Date.parse(`${iso}T00:00:00Z`) - Date.parse(`${today}T00:00:00Z`)) / 86400000);
}

export function renewable(card, now, parsed = parseIssued(card.credential)) {
  const end = registrationEnd(card, parsed);
  if (!end) return false;
  const left = daysUntil(end, now);
  return left >= 0 && left <= RENEW_DAYS;
}

// Refuse to keep what we cannot show: every credential of a batch is parsed
// (an error if one is not an SD-JWT we read); the first one's parse is returned.
export function parseBatch(batch) {
  return batch.map((c) => parseIssued(c.credential))[0];
}

// A batch just issued (either flow) into the list: a new card, or the same
// registration again (a renewal collected), which replaces the old card's
// credentials when the new ones start, never before.  Mutates `cards`.
export function merge(cards, got, now) {
  const parsed = parseBatch(got.batch);
  const first = got.batch[0];
  const match = matchKey(got.issuer, parsed);
  const fresh = {
    credential: first.credential,
    batch: got.batch,
    refill: got.refill,
    valid_until: got.registration?.valid_until ?? null,
  };
  const old = cards.find((c) => c.match === match);
  if (!old) {
    const card = {
      id: randomToken(9), match, issuer: got.issuer, configuration: got.configuration,
      display: got.display, received_at: now, ...fresh, last: null, status: null,
      subject: got.registration?.subject ?? 'self', next: null,
    };
    cards.push(card);
    return { card, outcome: 'new' };
  }
  if (got.registration) old.subject = got.registration.subject;
  const starts = parsed.payload.nbf || parsed.payload.iat;
  if (starts > now) {
    old.next = { ...fresh, display: got.display, starts };
    return { card: old, outcome: 'next' };
  }
  Object.assign(old, fresh, { last: null, status: null, next: null, display: got.display, received_at: now });
  return { card: old, outcome: 'renewed' };
}

// A renewal collected before its start replaces the old card at the start.
export function promote(cards, now) {
  let changed = false;
  for (const card of cards) {
    if (card.next && card.next.starts <= now) {
      const { starts, ...fresh } = card.next;
      Object.assign(card, fresh, { last: null, status: null, next: null });
      changed = true;
    }
  }
  return changed;
}

// After a refill: a credential ending after the known end means the registration
// was renewed (and the refresh token picked it up): the old end is no longer true.
export function afterRefill(card, before) {
  const p = parseIssued(card.credential).payload;
  if (card.valid_until && before && lastValidDay(p.exp) > before) card.valid_until = null;
}

// The one card of a wallet from before several cards, as a card of the list
// (null when there was none).  `old` holds the SINGLE_CARD_KEYS' values.
export function migrate(old) {
  const { holder, card, status, batch, last, refill } = old;
  if (!holder || !card) return null;
  return {
    id: randomToken(9), match: matchKey(card.issuer, parseIssued(card.credential)),
    issuer: card.issuer, configuration: card.configuration, display: card.display || [],
    credential: card.credential, received_at: card.received_at || 0,
    // A card kept before batches: its one credential is the whole batch.
    batch: Array.isArray(batch) ? batch : [{ privateKey: holder.privateKey, credential: card.credential }],
    last: last || null, refill: refill || null, status: status || null,
    subject: 'self', valid_until: null, next: null,
  };
}
