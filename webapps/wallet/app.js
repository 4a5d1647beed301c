// The browser wallet: receive the card over OpenID4VCI, keep it (and its
// non-extractable key) in IndexedDB, and present it as a QR code offline.
import { encode as transportEncode } from '../lib/transport.js';
import { applyStatic, getLang, setLang, t } from './i18n.js';
import { acceptOffer, IssuanceError, parseOfferText, refill as refillBatch } from './oid4vci.js';
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
const state = {
  lang: getLang(), holder: null, card: null, parsed: null, status: null, qr: null,
  // One-time credentials (issue 13): each QR is made from one of these, used once.
  batch: [], last: null, refill: null, refilling: null,
};

// --- small helpers -------------------------------------------------------------------

function show(view) {
  for (const id of ['view-loading', 'view-add', 'view-card', 'view-office']) $(id).hidden = id !== view;
}

function say(text, kind = 'info') {
  const el = $('message');
  el.textContent = text;
  el.className = `message ${kind}`;
  el.hidden = !text;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

function lastValidDay(exp) {
  // exp is the first instant no longer valid; a card shows the last valid day.
  return jstParts(exp - 1).iso;
}

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

function statusText() {
  const lang = state.lang;
  const p = state.parsed.payload;
  if (typeof p.exp === 'number' && p.exp <= nowSeconds()) return { text: t('status_expired', {}, lang), kind: 'expired' };
  const st = state.status;
  if (!st) return { text: t('status_never', {}, lang), kind: 'unknown' };
  const word = t(`status_${st.name}`, {}, lang);
  return { text: word, time: formatMoment(st.checked_at, lang), kind: st.name };
}

function renderCard() {
  const lang = state.lang;
  const p = state.parsed.payload;
  $('card-lg').textContent = issuerName(state.card, lang);
  $('card-tier').textContent = t(`tier_${p.tier}`, {}, lang);
  // One date per line: 和暦 with its ISO date does not fit a phone's width twice.
  const from = formatDate(jstParts(p.nbf || p.iat).iso, lang);
  const to = formatDate(lastValidDay(p.exp), lang);
  const [head, tail] = t('valid_range', { from, to: '\u0000' }, lang).split('\u0000');
  const validity = $('card-validity');
  validity.replaceChildren(line(head), line(to + tail));
  const st = statusText();
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
  $('card-left').textContent = t('batch_left', { n: state.batch.length }, lang);
  $('card-left').dataset.left = String(state.batch.length);
}

function claimRows() {
  const lang = state.lang;
  const en = lang === 'en';
  const rows = [];
  for (const d of state.parsed.disclosures) {
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
  if (state.card) {
    renderCard();
    if (!$('view-loading').hidden) show('view-card');
    if (!$('view-office').hidden) renderOffice();
  } else {
    show('view-add');
  }
  if (state.qr) {
    showQrWarning();
    drawPresentation(false);
  }
}

// --- status --------------------------------------------------------------------------

async function refreshStatus({ quiet }) {
  if (!state.parsed) return;
  try {
    state.status = await checkStatus(state.parsed.payload);
    await store.put('status', state.status);
    if (!quiet) say(t('ok_status', {}, state.lang), 'ok');
  } catch (err) {
    if (!quiet) {
      const offline = err instanceof TypeError || !navigator.onLine;
      say(offline ? t('err_offline', {}, state.lang) : t('err_status', { detail: err.message }, state.lang), 'error');
    }
  }
  if (state.card) renderCard();
}

// --- receiving -----------------------------------------------------------------------

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
    const got = await acceptOffer(offer, tx || null);
    for (const c of got.batch) parseIssued(c.credential); // refuse to store what we cannot show
    const first = got.batch[0];
    const holder = { privateKey: first.privateKey, publicKey: first.publicKey };
    const card = {
      credential: first.credential, // what the card shows; presentations take from the batch
      issuer: got.issuer,
      configuration: got.configuration,
      display: got.display,
      received_at: nowSeconds(),
    };
    // One transaction: never a card without its batch, nor a batch without its refill grant.
    await store.putMany({ holder, card, batch: got.batch, refill: got.refill, last: null });
    await store.del('status');
    Object.assign(state, {
      holder, card, parsed: parseIssued(card.credential), status: null,
      batch: got.batch, last: null, refill: got.refill,
    });
    $('offer').value = '';
    $('tx-code').value = '';
    history.replaceState(null, '', location.pathname); // the offer is spent: do not run it again
    show('view-card');
    render();
    say(t('ok_received', {}, lang), 'ok');
    await refreshStatus({ quiet: true });
    $('card-lg').focus?.();
  } catch (err) {
    let text;
    if (err instanceof IssuanceError && err.kind === 'tx_code') {
      text = t(tx ? 'err_tx_code' : 'err_tx_needed', {}, lang);
      $('tx-code').focus();
    } else if (err instanceof IssuanceError && err.kind === 'network') {
      text = t('err_network', {}, lang);
    } else if (err instanceof IssuanceError && err.kind === 'input') {
      text = t('err_offer', {}, lang);
    } else if (err instanceof IssuanceError && ['offer_expired', 'offer_used', 'offer_locked'].includes(err.code)) {
      text = t(`err_${err.code}`, {}, lang);
    } else {
      text = t('err_issue', { detail: err.code || err.message }, lang);
    }
    say(text, 'error');
  } finally {
    button.disabled = false;
    button.textContent = t('accept', {}, lang);
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
  $('qr-lg').textContent = issuerName(state.card, lang);
  $('qr-disclosed').textContent = qr.names.length
    ? t('qr_disclosed', { items: qr.names.map(groupLabel).join(lang === 'en' ? ', ' : '、') }, lang)
    : t('qr_nothing', {}, lang);
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

// Refill online (the refresh token of the last batch); quiet unless asked.
function tryRefill({ quiet = true } = {}) {
  if (!state.refill?.refresh_token || !navigator.onLine) return Promise.resolve(false);
  if (state.refilling) return state.refilling;
  state.refilling = (async () => {
    try {
      const got = await refillBatch(state.refill);
      for (const c of got.batch) parseIssued(c.credential);
      const first = got.batch[0];
      const holder = { privateKey: first.privateKey, publicKey: first.publicKey };
      const card = { ...state.card, credential: first.credential };
      const batch = [...state.batch, ...got.batch];
      await store.putMany({ holder, card, batch, refill: got.refill });
      Object.assign(state, { holder, card, parsed: parseIssued(card.credential), batch, refill: got.refill });
      $('reuse-last').hidden = true;
      if (!quiet) say(t('ok_refilled', {}, state.lang), 'ok');
      return true;
    } catch {
      return false; // offline, or the registration is no longer active: keep what is left
    } finally {
      state.refilling = null;
      if (state.card) renderCard();
    }
  })();
  return state.refilling;
}

// Take one unused credential out of the batch, in storage, before any QR of it
// is drawn: a crash or a reload can never show the same one twice.
async function takeCredential() {
  if (state.batch.length === 0) await tryRefill();
  if (state.batch.length === 0) return null;
  const [cred, ...rest] = state.batch;
  await store.putMany({ batch: rest, last: cred });
  Object.assign(state, { batch: rest, last: cred });
  renderCard();
  return cred;
}

async function openPresentation(profile, names, { reuse = false } = {}) {
  say('');
  const cred = reuse ? state.last : await takeCredential();
  if (!cred) {
    // The documented policy: no QR from a credential a shop has already seen,
    // unless the person chooses it knowing the visits can then be linked.
    say(t('err_empty', {}, state.lang), 'error');
    $('reuse-last').hidden = !state.last;
    $('reuse-last').dataset.profile = profile;
    $('reuse-last').dataset.names = JSON.stringify(names);
    return;
  }
  $('reuse-last').hidden = true;
  if (state.batch.length < REFILL_BELOW) tryRefill();
  returnFocus = document.activeElement;
  state.qr = { profile, names, cred, text: null, iat: 0, timer: setInterval(tickCountdown, 1000) };
  $('view-qr').hidden = false;
  $('main').inert = true;
  $('qr-close').focus();
  try {
    wakeLock = await navigator.wakeLock?.request('screen');
  } catch {
    wakeLock = null; // not allowed (battery saver): the code still shows
  }
  showQrWarning();
  await drawPresentation(true);
}

// The code still shows (the resident may need it to ask why), but never
// without saying that a verifier will refuse it.
function showQrWarning() {
  const st = statusText();
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
  const present = new Set(state.parsed.disclosures.map((d) => d.name));
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
    if (offer) {
      $('offer').value = offer;
      show('view-add');
      $('tx-code').focus();
    }
  });
  $('refresh-status').addEventListener('click', () => refreshStatus({ quiet: false }));
  $('remove').addEventListener('click', async () => {
    if (!window.confirm(t('remove_confirm', {}, state.lang))) return;
    await store.clear();
    Object.assign(state, { holder: null, card: null, parsed: null, status: null, batch: [], last: null, refill: null });
    show('view-add');
    render();
    say(t('removed', {}, state.lang), 'ok');
  });
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
  const [holder, card, status, batch, last, refill] = await Promise.all(
    ['holder', 'card', 'status', 'batch', 'last', 'refill'].map((k) => store.get(k)),
  );
  if (holder && card) {
    Object.assign(state, {
      holder, card, parsed: parseIssued(card.credential), status: status || null,
      // A card kept before batches: its one credential is the whole batch.
      batch: Array.isArray(batch) ? batch : [{ privateKey: holder.privateKey, credential: card.credential }],
      last: last || null,
      refill: refill || null,
    });
  }
  const offer = offerFromLocation();
  if (offer) {
    $('offer').value = offer;
    show('view-add');
    applyStatic(document, state.lang);
    $('tx-code').focus();
  } else {
    show(state.card ? 'view-card' : 'view-add');
    render();
  }
  document.body.dataset.ready = 'true';
  if (state.card && navigator.onLine) refreshStatus({ quiet: true });
  if (state.card && state.batch.length < REFILL_BELOW) tryRefill();
  window.addEventListener('online', () => state.card && state.batch.length < REFILL_BELOW && tryRefill());
}

main().catch((err) => {
  say(String(err && err.message ? err.message : err), 'error');
  document.body.dataset.ready = 'error';
});
