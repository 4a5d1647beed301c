// The browser wallet: receive cards over OpenID4VCI (the counter's pre-authorized
// code, or the authorization code flow of an online application), keep each with
// its batch of non-extractable keys in IndexedDB, and present the one the person
// picks as a QR code offline.
import { encode as transportEncode } from '../lib/transport.js';
import { applyStatic, getLang, setLang, t } from './i18n.js';
import {
  acceptOffer, beginAuthorization, fetchOffer, finishAuthorization, isAuthCodeOffer,
  IssuanceError, offerFlow, parseOfferText, PENDING_SECONDS, refill as refillBatch,
} from './oid4vci.js';
import {
  afterRefill, lastValidDay, merge, migrate, parseBatch, promote, registrationEnd as endOf, renewable as renewableAt,
  SINGLE_CARD_KEYS,
} from './cards.js';
import { drawQr } from './qr.js';
import { GROUPS, parseIssued, present, PROFILE_DISCLOSURES } from './sdjwt.js';
import { checkStatus } from './status.js';
import * as store from './store.js';
import { formatDate, formatMoment, jstParts } from '../lib/wareki.js';
import { ACTIVITIES as ACTIVITY_LIST } from '../lib/shared.js';

// A fresh KB-JWT this often; the counter profile accepts 120 s, so a code on
// screen is always well inside the verifier's window.
export const REFRESH_SECONDS = 30;
// Refill the batch of one-time credentials when online and fewer than this are left.
export const REFILL_BELOW = 3;

// A Map, not an object: a code read from a credential is never a prototype key.
const ACTIVITIES = new Map(ACTIVITY_LIST.map((a) => [a.code, a]));

const $ = (id) => document.getElementById(id);
// Every card: { id, match, issuer, configuration, display, credential, received_at,
// batch, last, refill, status, subject ('self' | 'child'), valid_until, next }.
// `cards` in IndexedDB is this list, written whole after each change.
const state = {
  lang: getLang(), cards: [], current: null, qr: null, refilling: new Map(), offerFromLink: false,
};
const parsedCache = new Map();

// --- small helpers -------------------------------------------------------------------

function show(view) {
  for (const id of ['view-loading', 'view-add', 'view-list', 'view-card', 'view-office']) $(id).hidden = id !== view;
}

function parsedOf(card) {
  let p = parsedCache.get(card.credential);
  if (!p) {
    p = parseIssued(card.credential);
    parsedCache.set(card.credential, p);
  }
  return p;
}

const persist = () => store.update({ cards: state.cards });

function disclosed(card, name) {
  return parsedOf(card).disclosures.find((d) => d.name === name)?.value;
}

// Whose card it is, for this screen only: never in a QR (the counter profile
// discloses nothing, and the issuer's token answer said whose, not the credential).
function whose(card, lang) {
  if (card.subject !== 'child') return t('whose_self', {}, lang);
  const p = disclosed(card, 'person') || {};
  const name = [p.family_name, p.given_name].filter(Boolean).join(' ');
  return t('whose_child', { name: name || '?' }, lang);
}

const registrationEnd = (card) => endOf(card, parsedOf(card));
const renewable = (card) => renewableAt(card, nowSeconds(), parsedOf(card));

// /apply/renew of the deployment that issued the card (the municipality's issuer
// identifier is <base>/lg/<code>).
function renewUrl(card) {
  const u = new URL(card.issuer);
  return `${u.origin}${u.pathname.replace(/\/lg\/[^/]+\/?$/, '')}/apply/renew`;
}

function say(text, kind = 'info') {
  const el = $('message');
  el.textContent = text;
  el.className = `message ${kind}`;
  el.hidden = !text;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);


function issuerName(card, lang) {
  const want = lang === 'en' ? 'en' : 'ja';
  const hit = (card.display || []).find((d) => String(d.locale || '').startsWith(want));
  return (hit || card.display?.[0] || {}).name || card.issuer;
}

function groupLabel(name) {
  const key = `group_${name}`;
  const text = t(key, {}, state.lang);
  return text === key ? name : text;
}

function line(text) {
  const span = document.createElement('span');
  span.className = 'line';
  span.textContent = text;
  return span;
}

// --- the card ------------------------------------------------------------------------

function statusText(card) {
  const lang = state.lang;
  const p = parsedOf(card).payload;
  if (typeof p.exp === 'number' && p.exp <= nowSeconds()) return { text: t('status_expired', {}, lang), kind: 'expired' };
  const st = card.status;
  if (!st) return { text: t('status_never', {}, lang), kind: 'unknown' };
  const word = t(`status_${st.name}`, {}, lang);
  return { text: word, time: formatMoment(st.checked_at, lang), kind: st.name };
}

function renderCard() {
  const lang = state.lang;
  const card = state.current;
  const p = parsedOf(card).payload;
  $('card-lg').textContent = issuerName(card, lang);
  $('card-tier').textContent = t(`tier_${p.tier}`, {}, lang);
  $('card-whose').textContent = whose(card, lang);
  $('card').dataset.subject = card.subject;
  // One date per line: 和暦 with its ISO date does not fit a phone's width twice.
  const from = formatDate(jstParts(p.nbf || p.iat).iso, lang);
  const end = registrationEnd(card);
  const to = formatDate(end || lastValidDay(p.exp), lang);
  const [head, tail] = t('valid_range', { from, to: '\u0000' }, lang).split('\u0000');
  const validity = $('card-validity');
  validity.replaceChildren(line(head), line(to + tail));
  const st = statusText(card);
  const dd = $('card-status');
  dd.replaceChildren();
  const badge = document.createElement('span');
  badge.className = `badge ${st.kind}`;
  badge.textContent = st.text;
  dd.append(badge);
  dd.dataset.status = st.kind;
  if (st.time) {
    const when = document.createElement('span');
    when.className = 'status-time';
    when.textContent = t('status_time', { time: st.time }, lang);
    dd.append(when);
  }
  renderClaims();
  $('card-left').textContent = t('batch_left', { n: card.batch.length }, lang);
  $('card-left').dataset.left = String(card.batch.length);
  const due = renewable(card);
  $('renew-box').hidden = !due;
  if (due) {
    $('card-renew').href = renewUrl(card);
    $('renew-help').textContent = t('renew_help', { date: formatDate(end, lang) }, lang);
  }
}

// The list: every card, the person picks the one to present.
function renderList() {
  const lang = state.lang;
  $('card-list').replaceChildren(...state.cards.map((card) => {
    const p = parsedOf(card).payload;
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'card-item';
    button.dataset.id = card.id;
    button.dataset.subject = card.subject;
    const end = registrationEnd(card) || lastValidDay(p.exp);
    const title = document.createElement('strong');
    title.textContent = issuerName(card, lang);
    button.append(
      title,
      line(`${t(`tier_${p.tier}`, {}, lang)} ・ ${whose(card, lang)}`),
      line(t('valid_until', { date: formatDate(end, lang) }, lang)),
    );
    if (renewable(card)) {
      const badge = document.createElement('span');
      badge.className = 'badge renew';
      badge.textContent = t('renew_due', {}, lang);
      button.append(badge);
    }
    button.addEventListener('click', () => openCard(card));
    li.append(button);
    return li;
  }));
}

function openCard(card) {
  say('');
  state.current = card;
  show('view-card');
  render();
  $('card-lg').focus?.();
}

function claimRows() {
  const lang = state.lang;
  const en = lang === 'en';
  const rows = [];
  for (const d of parsedOf(state.current).disclosures) {
    const v = d.value;
    if (d.name === 'person' && v && typeof v === 'object') {
      rows.push([t('claim_name', {}, lang), [v.family_name, v.given_name].filter(Boolean).join(' ')]);
      rows.push([t('claim_kana', {}, lang), [v.family_name_kana, v.given_name_kana].filter(Boolean).join(' ')]);
      if (v.birthdate) rows.push([t('claim_birthdate', {}, lang), formatDate(String(v.birthdate), lang)]);
    } else if (d.name === 'primary_residence' && v && typeof v === 'object') {
      rows.push([groupLabel(d.name), v.name || v.lg_code]);
    } else if (d.name === 'second_home' && v && typeof v === 'object') {
      rows.push([groupLabel(d.name), [v.postal_code && `〒${v.postal_code}`, v.address].filter(Boolean).join(' ')]);
    } else if (d.name === 'activities' && Array.isArray(v)) {
      rows.push([groupLabel(d.name), v.map((c) => ACTIVITIES.get(c)?.[en ? 'en' : 'ja'] ?? c).join(en ? ', ' : '、')]);
    } else if (d.name === 'registered_since' && typeof v === 'string') {
      rows.push([groupLabel(d.name), formatDate(v, lang)]);
    } else {
      rows.push([groupLabel(d.name), typeof v === 'string' ? v : JSON.stringify(v)]);
    }
  }
  return rows;
}

function renderClaims() {
  const dl = $('card-claims');
  dl.replaceChildren(...claimRows().map(([k, v]) => {
    const row = document.createElement('div');
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = k;
    dd.textContent = v;
    row.append(dt, dd);
    return row;
  }));
}

function render() {
  applyStatic(document, state.lang);
  renderList();
  if (state.current) {
    renderCard();
    if (!$('view-loading').hidden) show('view-card');
    if (!$('view-office').hidden) renderOffice();
  } else if (state.cards.length === 0) {
    show('view-add');
  } else if ($('view-add').hidden) {
    show('view-list');
  }
  $('add-back').hidden = state.cards.length === 0;
  offerMode($('offer').value);
  if (state.qr) drawPresentation(false);
}

// The home screen: one card opens directly, several as the list.
function home() {
  state.current = state.cards.length === 1 ? state.cards[0] : null;
  show(state.current ? 'view-card' : state.cards.length ? 'view-list' : 'view-add');
  render();
}

// --- status --------------------------------------------------------------------------

async function refreshStatus(card, { quiet }) {
  if (!card) return;
  try {
    card.status = await checkStatus(parsedOf(card).payload);
    await persist();
    if (!quiet) say(t('ok_status', {}, state.lang), 'ok');
  } catch (err) {
    if (!quiet) {
      const offline = err instanceof TypeError || !navigator.onLine;
      say(offline ? t('err_offline', {}, state.lang) : t('err_status', { detail: err.message }, state.lang), 'error');
    }
  }
  if (state.current) renderCard();
}

// --- receiving -----------------------------------------------------------------------

// A batch just issued, by either flow: a new card, or a renewal of one (cards.js).
async function keepIssued(got) {
  const { card, outcome } = merge(state.cards, got, nowSeconds());
  // One write: never a card without its batch, nor a batch without its refill grant.
  await persist();
  state.current = card;
  return { card, outcome };
}

function promoteNext() {
  return promote(state.cards, nowSeconds()) ? persist() : Promise.resolve();
}

function issuanceText(err, lang, tx = '') {
  if (err instanceof IssuanceError) {
    if (err.kind === 'tx_code') return t(tx ? 'err_tx_code' : 'err_tx_needed', {}, lang);
    if (err.kind === 'network') return t('err_network', {}, lang);
    if (err.kind === 'input') return t('err_offer', {}, lang);
    if (['state', 'iss', 'denied', 'expired'].includes(err.kind)) return t(`err_${err.kind}`, {}, lang);
    if (['offer_expired', 'offer_used', 'offer_locked'].includes(err.code)) return t(`err_${err.code}`, {}, lang);
  }
  return t('err_issue', { detail: err.code || err.message }, lang);
}

async function received(got, lang) {
  const { card, outcome } = await keepIssued(got);
  show('view-card');
  render();
  const starts = card.next ? formatDate(jstParts(card.next.starts).iso, lang) : '';
  say(t({ new: 'ok_received', renewed: 'ok_renewed', next: 'ok_next' }[outcome], { date: starts }, lang), 'ok');
  await refreshStatus(card, { quiet: true });
  $('card-lg').focus?.();
}

// The authorization code flow: push the request, keep what the return needs
// (with the non-extractable DPoP key) on this device, go to the sign-in.
async function startAuthorization(offer) {
  const redirect = `${location.origin}${location.pathname}`;
  const { url, pending } = await beginAuthorization(offer, redirect);
  await store.put('pending', pending);
  location.assign(url);
}

// Back from the sign-in with ?code&state&iss (or an error): the address bar is
// cleared and the pending request spent before anything else, so a reload or
// the back button never replays the code.
async function finishReturn(params) {
  const lang = state.lang;
  history.replaceState(null, '', location.pathname);
  const pending = await store.get('pending');
  await store.del('pending');
  show('view-loading');
  say(t('accepting', {}, lang));
  try {
    const got = await finishAuthorization(params, pending);
    await received(got, lang);
  } catch (err) {
    say(issuanceText(err, lang), 'error');
    home();
  }
}

function offerMode(text) {
  const auth = isAuthCodeOffer(text);
  $('add-title').textContent = t(auth ? 'collect_title' : 'add_title', {}, state.lang);
  $('add-help').textContent = t(auth ? 'collect_help' : 'add_help', {}, state.lang);
  $('accept').textContent = t(auth ? 'accept_signin' : 'accept', {}, state.lang);
  $('tx-box').hidden = auth;
  // The link came from the issuer's own page: show whom it is from, not the raw offer.
  $('offer-box').hidden = auth && state.offerFromLink;
  $('collect-issuer').hidden = !auth;
  if (auth) {
    const issuer = parseOfferText(text).offer.credential_issuer;
    $('collect-issuer').textContent = t('collect_issuer', { issuer }, state.lang);
  }
  $('view-add').dataset.flow = auth ? 'authorization_code' : 'pre-authorized';
  return auth;
}

async function onAccept(event) {
  event.preventDefault();
  const lang = state.lang;
  const offer = $('offer').value;
  // NFKC: a Japanese keyboard may type full-width digits (１２３).
  const tx = $('tx-code').value.normalize('NFKC').replace(/[\s-]/g, '');
  try {
    parseOfferText(offer);
  } catch {
    say(t('err_offer', {}, lang), 'error');
    $('offer').focus();
    return;
  }
  const button = $('accept');
  button.disabled = true;
  button.textContent = t('accepting', {}, lang);
  say('');
  try {
    // An offer by reference says its flow only once fetched.
    const byValue = isAuthCodeOffer(offer);
    const fetched = byValue ? parseOfferText(offer).offer : await fetchOffer(offer);
    if (byValue || offerFlow(fetched) === 'authorization_code') {
      await startAuthorization(fetched);
      return; // the page is leaving for the sign-in
    }
    const got = await acceptOffer(fetched, tx || null);
    $('offer').value = '';
    $('tx-code').value = '';
    history.replaceState(null, '', location.pathname); // the offer is spent: do not run it again
    await received(got, lang);
  } catch (err) {
    if (err instanceof IssuanceError && err.kind === 'tx_code') $('tx-code').focus();
    say(issuanceText(err, lang, tx), 'error');
  } finally {
    button.disabled = false;
    offerMode($('offer').value);
  }
}

// An offer can arrive as a link to this page: …/wallet/#credential_offer_uri=… (the
// issuer's wallet_uri: a fragment never reaches a server log) or with ?credential_offer_uri=….
function offerFromLocation() {
  const q = location.search.slice(1) || location.hash.slice(1);
  if (!/credential_offer(_uri)?=/.test(q)) return null;
  const params = new URLSearchParams(q);
  if (params.has('offer')) return params.get('offer');
  return `openid-credential-offer://?${q}`;
}

let scanning = null;
async function toggleScan() {
  const video = $('scan-video');
  if (scanning) {
    scanning.stop();
    return;
  }
  try {
    const detector = new window.BarcodeDetector({ formats: ['qr_code'] });
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    $('scan').textContent = t('scan_stop', {}, state.lang);
    let live = true;
    scanning = {
      stop() {
        live = false;
        stream.getTracks().forEach((tr) => tr.stop());
        video.hidden = true;
        scanning = null;
        $('scan').textContent = t('scan', {}, state.lang);
      },
    };
    const tick = async () => {
      if (!live) return;
      try {
        const codes = await detector.detect(video);
        const hit = codes.find((c) => /credential_offer/.test(c.rawValue));
        if (hit) {
          $('offer').value = hit.rawValue;
          scanning.stop();
          $('tx-code').focus();
          return;
        }
      } catch {
        // a frame that is not ready yet: try the next one
      }
      requestAnimationFrame(tick);
    };
    tick();
  } catch {
    say(t('err_camera', {}, state.lang), 'error');
  }
}

// --- presenting ----------------------------------------------------------------------

let wakeLock = null;
let returnFocus = null;

async function drawPresentation(fresh) {
  const qr = state.qr;
  const lang = state.lang;
  $('qr-title').textContent = t(qr.profile === 'counter' ? 'qr_counter_title' : 'qr_office_title', {}, lang);
  $('qr-lg').textContent = issuerName(qr.card, lang);
  // Whose: on this screen only, for the person holding the phone; the QR says nothing of it.
  $('qr-whose').textContent = `${t('whose', {}, lang)}：${whose(qr.card, lang)}`;
  $('qr-disclosed').textContent = qr.names.length
    ? t('qr_disclosed', { items: qr.names.map(groupLabel).join(lang === 'en' ? ', ' : '、') }, lang)
    : t('qr_nothing', {}, lang);
  showQrWarning(qr.card);
  if (fresh || !qr.text) {
    if (qr.signing) return; // the ticker fires again while WebCrypto is still signing
    qr.signing = true;
    const now = nowSeconds();
    let compact;
    try {
      compact = await present(qr.cred.credential, qr.cred.privateKey, { names: qr.names, profile: qr.profile, now });
    } finally {
      qr.signing = false;
    }
    if (state.qr !== qr) return; // closed while signing
    qr.text = transportEncode(compact);
    qr.iat = now;
  }
  const side = Math.min(window.innerWidth - 24, window.innerHeight - 230, 640);
  const canvas = $('qr');
  drawQr(canvas, qr.text, Math.max(side, 160));
  canvas.dataset.iat = String(qr.iat);
  canvas.dataset.profile = qr.profile;
  tickCountdown();
}

function tickCountdown() {
  const qr = state.qr;
  if (!qr || !qr.iat) return;
  const left = REFRESH_SECONDS - (nowSeconds() - qr.iat);
  if (left <= 0) {
    drawPresentation(true);
    return;
  }
  $('qr-countdown').textContent = t('qr_countdown', { n: left }, state.lang);
}

// Refill a card online (the refresh token of its last batch); quiet unless asked.
// Each card refills on its own: its own registration, grant and batch.
function tryRefill(card, { quiet = true } = {}) {
  if (!card?.refill?.refresh_token || !navigator.onLine) return Promise.resolve(false);
  if (state.refilling.has(card.id)) return state.refilling.get(card.id);
  const job = (async () => {
    try {
      const got = await refillBatch(card.refill);
      parseBatch(got.batch);
      const before = registrationEnd(card);
      Object.assign(card, { credential: got.batch[0].credential, batch: [...card.batch, ...got.batch], refill: got.refill });
      // A renewal approved at /apply/ shows in a refill as a later end than the one known.
      afterRefill(card, before);
      await persist();
      if (state.current === card) $('reuse-last').hidden = true;
      if (!quiet) say(t('ok_refilled', {}, state.lang), 'ok');
      return true;
    } catch {
      return false; // offline, or the registration is no longer active: keep what is left
    } finally {
      state.refilling.delete(card.id);
      if (state.current) renderCard();
      renderList();
    }
  })();
  state.refilling.set(card.id, job);
  return job;
}

// Take one unused credential out of the card's batch, in storage, before any QR
// of it is drawn: a crash or a reload can never show the same one twice.
async function takeCredential(card) {
  if (card.batch.length === 0) await tryRefill(card);
  if (card.batch.length === 0) return null;
  const [cred, ...rest] = card.batch;
  Object.assign(card, { batch: rest, last: cred });
  await persist();
  renderCard();
  return cred;
}

async function openPresentation(profile, names, { reuse = false } = {}) {
  say('');
  await promoteNext();
  const card = state.current;
  const cred = reuse ? card.last : await takeCredential(card);
  if (!cred) {
    // The documented policy: no QR from a credential a shop has already seen,
    // unless the person chooses it knowing the visits can then be linked.
    say(t('err_empty', {}, state.lang), 'error');
    $('reuse-last').hidden = !card.last;
    $('reuse-last').dataset.profile = profile;
    $('reuse-last').dataset.names = JSON.stringify(names);
    return;
  }
  $('reuse-last').hidden = true;
  if (card.batch.length < REFILL_BELOW) tryRefill(card);
  returnFocus = document.activeElement;
  state.qr = { profile, names, cred, card, text: null, iat: 0, timer: setInterval(tickCountdown, 1000) };
  $('view-qr').hidden = false;
  $('main').inert = true;
  $('qr-close').focus();
  try {
    wakeLock = await navigator.wakeLock?.request('screen');
  } catch {
    wakeLock = null; // not allowed (battery saver): the code still shows
  }
  await drawPresentation(true);
}

// The code still shows (the resident may need it to ask why), but never
// without saying that a verifier will refuse it.  Drawn with the rest of the
// QR screen's text, from the card being shown (with several, the one picked).
function showQrWarning(card) {
  const st = statusText(card);
  const box = $('qr-warning');
  const bad = ['revoked', 'suspended', 'expired'].includes(st.kind);
  box.hidden = !bad;
  box.textContent = bad ? `⚠ ${t(`qr_warn_${st.kind}`, {}, state.lang)}` : '';
}

function closePresentation() {
  if (!state.qr) return;
  clearInterval(state.qr.timer);
  state.qr = null;
  $('view-qr').hidden = true;
  $('main').inert = false;
  wakeLock?.release?.().catch(() => {});
  wakeLock = null;
  returnFocus?.focus?.();
}

function renderOffice() {
  const box = $('office-groups');
  const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
  const first = box.children.length === 0;
  const required = new Set(PROFILE_DISCLOSURES.office);
  const present = new Set(parsedOf(state.current).disclosures.map((d) => d.name));
  box.replaceChildren(...GROUPS.filter((g) => present.has(g)).map((g) => {
    const label = document.createElement('label');
    label.className = 'check';
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.name = 'disclose';
    input.value = g;
    input.checked = first ? required.has(g) : checked.has(g);
    const text = document.createElement('span');
    text.textContent = groupLabel(g);
    if (required.has(g)) {
      const small = document.createElement('small');
      small.textContent = t('office_required', {}, state.lang);
      text.append(small);
    }
    label.append(input, text);
    return label;
  }));
}

// --- start ---------------------------------------------------------------------------

function wire() {
  $('lang').addEventListener('click', () => {
    state.lang = state.lang === 'ja' ? 'en' : 'ja';
    setLang(state.lang);
    $('lang').setAttribute('lang', state.lang === 'ja' ? 'en' : 'ja');
    render();
  });
  $('add-form').addEventListener('submit', onAccept);
  $('show-counter').addEventListener('click', () => openPresentation('counter', []));
  $('show-office').addEventListener('click', () => {
    say('');
    $('office-groups').replaceChildren();
    renderOffice();
    show('view-office');
    $('office-title').focus?.();
  });
  $('office-back').addEventListener('click', () => show('view-card'));
  $('office-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const names = [...$('office-groups').querySelectorAll('input:checked')].map((i) => i.value);
    openPresentation('office', names);
  });
  $('qr-close').addEventListener('click', closePresentation);
  $('reuse-last').addEventListener('click', () => {
    const b = $('reuse-last');
    openPresentation(b.dataset.profile || 'counter', JSON.parse(b.dataset.names || '[]'), { reuse: true });
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') closePresentation();
  });
  // A phone that slept with the code on screen wakes to a stale code: redraw.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.qr) tickCountdown();
  });
  window.addEventListener('resize', () => state.qr && drawPresentation(false));
  // A link opened while the wallet is already open only changes the fragment.
  window.addEventListener('hashchange', () => {
    const offer = offerFromLocation();
    if (offer) showOffer(offer);
  });
  $('refresh-status').addEventListener('click', () => refreshStatus(state.current, { quiet: false }));
  $('remove').addEventListener('click', async () => {
    if (!window.confirm(t('remove_confirm', {}, state.lang))) return;
    // This card and its keys only; the others stay.
    state.cards = state.cards.filter((c) => c !== state.current);
    await persist();
    home();
    say(t('removed', {}, state.lang), 'ok');
  });
  $('to-list').addEventListener('click', () => {
    state.current = null;
    say('');
    show('view-list');
    render();
  });
  $('list-add').addEventListener('click', () => {
    state.current = null;
    state.offerFromLink = false;
    say('');
    $('offer').value = '';
    show('view-add');
    render();
    $('offer').focus();
  });
  $('add-back').addEventListener('click', () => {
    $('offer').value = '';
    home();
  });
  $('offer').addEventListener('input', () => offerMode($('offer').value));
  if ('BarcodeDetector' in window && navigator.mediaDevices?.getUserMedia) {
    $('scan').hidden = false;
    $('scan').addEventListener('click', toggleScan);
  }
}

async function main() {
  $('lang').setAttribute('lang', state.lang === 'ja' ? 'en' : 'ja');
  applyStatic(document, state.lang);
  if (!window.isSecureContext || !window.crypto?.subtle || !window.indexedDB) {
    show('view-add');
    say(t('err_unsupported', {}, state.lang), 'error');
    return;
  }
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('./sw.js', { scope: './' }).catch(() => {});
  }
  wire();
  state.cards = await loadCards();
  await promoteNext();
  const params = new URLSearchParams(location.search);
  const offer = offerFromLocation();
  if (params.has('state') && (params.has('code') || params.has('error'))) {
    document.body.dataset.ready = 'true';
    await finishReturn(params);
  } else {
    // A sign-in abandoned long ago: its verifier and DPoP key have no use left.
    const pending = await store.get('pending');
    if (pending && nowSeconds() - pending.created > PENDING_SECONDS) await store.del('pending');
    if (offer) showOffer(offer);
    else home();
  }
  document.body.dataset.ready = 'true';
  for (const card of state.cards) {
    if (navigator.onLine) refreshStatus(card, { quiet: true });
    if (card.batch.length < REFILL_BELOW) tryRefill(card);
  }
  window.addEventListener('online', () => {
    for (const card of state.cards) if (card.batch.length < REFILL_BELOW) tryRefill(card);
  });
}

function showOffer(offer) {
  state.current = null;
  state.offerFromLink = true;
  $('offer').value = offer;
  show('view-add');
  render();
  if (!offerMode(offer)) $('tx-code').focus();
  else $('accept').focus();
}

// The cards, moving a wallet from before several cards (the keys `holder`, `card`,
// `batch`…) into the list in one transaction: its card and keys are kept.
async function loadCards() {
  const cards = await store.get('cards');
  if (Array.isArray(cards)) return cards;
  const values = await Promise.all(SINGLE_CARD_KEYS.map((k) => store.get(k)));
  const moved = migrate(Object.fromEntries(SINGLE_CARD_KEYS.map((k, i) => [k, values[i]])));
  const list = moved ? [moved] : [];
  await store.update({ cards: list }, SINGLE_CARD_KEYS);
  return list;
}

main().catch((err) => {
  say(String(err && err.message ? err.message : err), 'error');
  document.body.dataset.ready = 'error';
});
