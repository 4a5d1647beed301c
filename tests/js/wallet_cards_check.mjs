// webapps/wallet/cards.js under node: which card a batch joins, a renewal that
// replaces a card now or at its start, the 60-day renewal window, the refill
// that shows a renewal, and the move from the one-card store.  Exits non-zero
// on the first failed assertion (tests/test_wallet_cards.py runs it).
import assert from 'node:assert/strict';
import {
  afterRefill, daysUntil, merge, migrate, promote, registrationEnd, renewable, RENEW_DAYS,
} from '../../webapps/wallet/cards.js';

const DAY = 86400;
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
// 2026-12-03 00:00 JST
const T0 = Date.UTC(2026, 11, 2, 15, 0, 0) / 1000;

function credential({ iat = T0, days = 31, nbf, sub = 'pairwise-1', given = '花子' } = {}) {
  const payload = { iss: 'https://issuer.test/lg/203211', tier: 'basic', iat, exp: iat + days * DAY };
  if (nbf) payload.nbf = nbf;
  const jwt = `${b64({ typ: 'dc+sd-jwt', alg: 'ES256' })}.${b64(payload)}.sig`;
  const ds = [b64(['s1', 'sub', sub]), b64(['s2', 'person', { family_name: '山田', given_name: given }])];
  return `${jwt}~${ds.join('~')}~`;
}

function got(opts = {}, registration = null, issuer = 'https://issuer.test/lg/203211') {
  const c = credential(opts);
  return {
    batch: [{ credential: c, privateKey: 'k1' }, { credential: c, privateKey: 'k2' }],
    issuer, configuration: 'dualres_dual_residence', display: [], refill: { refresh_token: 'r' },
    registration,
  };
}

// A new card, then the same registration again (same issuer and sub): renewed, not added.
const cards = [];
let r = merge(cards, got({}, { valid_until: '2027-01-12', subject: 'self' }), T0);
assert.equal(r.outcome, 'new');
assert.equal(cards.length, 1);
const id = r.card.id;
assert.equal(r.card.subject, 'self');
r.card.batch.shift();
r.card.last = { credential: 'used' };
r = merge(cards, got({ iat: T0 + DAY }, { valid_until: '2028-01-12', subject: 'self' }), T0 + DAY);
assert.equal(r.outcome, 'renewed');
assert.equal(cards.length, 1);
assert.equal(r.card.id, id);
assert.equal(r.card.batch.length, 2); // the new batch, whole
assert.equal(r.card.last, null); // the old one is never shown again
assert.equal(r.card.valid_until, '2028-01-12');

// Another municipality and a child's card (other sub) are cards of their own.
merge(cards, got({ sub: 'pairwise-2' }, null, 'https://issuer.test/lg/011002'), T0);
r = merge(cards, got({ sub: 'pairwise-3', given: '太郎' }, { valid_until: '2027-12-01', subject: 'child' }), T0);
assert.equal(cards.length, 3);
assert.equal(r.card.subject, 'child');
// The same sub at another issuer is another card too.
merge(cards, got({}, null, 'https://issuer.test/lg/131016'), T0);
assert.equal(cards.length, 4);

// A renewal that starts later waits as `next`, and replaces the card at its start.
const later = [];
merge(later, got({}, { valid_until: '2027-01-12', subject: 'self' }), T0);
const start = T0 + 20 * DAY;
r = merge(later, got({ iat: T0 + DAY, nbf: start }, { valid_until: '2028-01-12', subject: 'self' }), T0 + DAY);
assert.equal(r.outcome, 'next');
const oldCredential = later[0].credential;
assert.equal(promote(later, start - 1), false);
assert.equal(later[0].credential, oldCredential);
assert.equal(promote(later, start), true);
assert.notEqual(later[0].credential, oldCredential);
assert.equal(later[0].next, null);
assert.equal(later[0].valid_until, '2028-01-12');

// Renewal opens 60 days before the end, and not after it.
const end = (days) => ({ credential: credential(), valid_until: new Date((T0 + 9 * 3600 + days * DAY) * 1000).toISOString().slice(0, 10) });
assert.equal(daysUntil(end(40).valid_until, T0), 40);
assert.equal(renewable(end(RENEW_DAYS + 1), T0), false);
assert.equal(renewable(end(RENEW_DAYS), T0), true);
assert.equal(renewable(end(40), T0), true);
// Without valid_until (a counter card), a 30-day credential says nothing of the end...
assert.equal(registrationEnd({ credential: credential() }), null);
assert.equal(renewable({ credential: credential() }, T0), false);
// ...but one the registration cut short shows it.
const short = { credential: credential({ days: 11 }) };
assert.equal(registrationEnd(short), '2026-12-13');
assert.equal(renewable(short, T0), true);

// A refill ending after the known end: the registration was renewed, the end is unknown again.
const refilled = { credential: credential({ iat: T0 + 50 * DAY }), valid_until: end(55).valid_until };
afterRefill(refilled, refilled.valid_until);
assert.equal(refilled.valid_until, null);
const same = { credential: credential(), valid_until: end(40).valid_until };
afterRefill(same, same.valid_until);
assert.equal(same.valid_until, end(40).valid_until);

// The one-card store: the card, its key and its batch kept; a card kept before batches
// has its one credential as the batch; nothing to move is null.
const c = credential();
const moved = migrate({ holder: { privateKey: 'kh' }, card: { credential: c, issuer: 'https://issuer.test/lg/203211' },
  batch: [{ credential: c, privateKey: 'kb' }], refill: { refresh_token: 'r' }, status: { name: 'valid' } });
assert.equal(moved.batch.length, 1);
assert.equal(moved.batch[0].privateKey, 'kb');
assert.equal(moved.subject, 'self');
assert.deepEqual(moved.status, { name: 'valid' });
const oldest = migrate({ holder: { privateKey: 'kh' }, card: { credential: c, issuer: 'x' } });
assert.deepEqual(oldest.batch, [{ privateKey: 'kh', credential: c }]);
assert.equal(migrate({}), null);
// A migrated card and a later collection of the same registration are one card.
const list = [moved];
assert.equal(merge(list, got({ iat: T0 + DAY }), T0 + DAY).outcome, 'renewed');
assert.equal(list.length, 1);

process.stdout.write('ok\n');
