// The verifier app: setup once, sync when online, check offline.

import { Bundle, BundleError, loadAnchor, sync } from './core/bundle.js';
import { verify } from './core/verify.js';
import { PREFECTURE_CODES, withPolicy } from './core/policy.js';
import { WORDS, ago, dateText, jst, left, momentText, t, wareki } from './i18n.js';
import { decodeImage, startCamera, backend } from './scan.js';
import { IdbReplayStore, addToRoster, clearRoster, getKv, openDb, readRoster, setKv } from './store.js';
import { csvText, encode, entryOf } from './roster.js';

export const APP_VERSION = 'dualres-verify-web 1';
const AUTO_SYNC_AFTER = 10 * 60; // seconds: a counter online re-syncs this often
// Warn this long before the saved data stops being accepted: a shop that syncs
// only when it opens then still has a whole day's notice.
const WARN_BEFORE = 24 * 3600;
const $ = (id) => document.getElementById(id);
const nowSec = () => Math.floor(Date.now() / 1000);

const state = {
  db: null,
  lang: 'ja',
  settings: null, // {anchor, source, profile}
  anchor: null,
  bundle: null,
  reasons: null,
  profiles: null,
  replay: null,
  stopCamera: null,
  last: null, // the last result, re-rendered on a language switch
  syncing: null,
};

// --- words ------------------------------------------------------------------------------

function tr(key, vars) {
  return t(state.lang, key, vars);
}

function applyWords() {
  document.documentElement.lang = state.lang;
  document.title = tr('app_title');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = tr(el.dataset.i18n);
  $('lang').textContent = tr('lang_switch');
  $('lang').lang = state.lang === 'ja' ? 'en' : 'ja';
  const p = state.settings && state.profiles && state.profiles[state.settings.profile];
  const limited = state.settings && hasPolicy(state.settings.policy);
  $('profile-badge').textContent = p ? p.label[state.lang] + (limited ? ` · ${tr('policy_badge')}` : '') : '';
  renderProfiles();
  renderPrefectures();
  renderDataState();
  renderRoster();
  if (state.last && !$('view-result').hidden) renderResult(state.last);
}

// --- the shelter roster ---------------------------------------------------------------

const keepsRoster = () => !!state.settings && state.settings.profile === 'shelter';

async function renderRoster() {
  const box = $('roster');
  box.hidden = !keepsRoster();
  if (box.hidden || !state.db) return;
  const n = (await readRoster(state.db)).length;
  $('roster-count').textContent = tr('roster_count', { n });
  box.dataset.count = String(n);
}

async function exportRoster(encoding) {
  const entries = await readRoster(state.db);
  const out = await encode(csvText(entries), encoding);
  if (out.badLines) {
    say(tr('roster_sjis_bad', { lines: out.badLines.join(', ') }), true);
    return;
  }
  const t = jst(nowSec());
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([out.bytes], { type: 'text/csv' }));
  a.download = `hinansha-meibo-${t.iso}-${t.hm.replace(':', '')}${encoding === 'shift_jis' ? '-sjis' : ''}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function clearRosterAsked() {
  const n = (await readRoster(state.db)).length;
  if (!window.confirm(tr('roster_clear_confirm', { n }))) return;
  await clearRoster(state.db);
  say(tr('roster_cleared'));
  await renderRoster();
}

function show(view) {
  for (const v of ['loading', 'setup', 'scan', 'result']) $(`view-${v}`).hidden = v !== view;
  document.body.dataset.view = view;
  if (view === 'scan') setTimeout(() => $('wedge').focus(), 0);
}

let sayTimer = 0;

// A note above the current view; good news fades by itself, trouble stays.
function say(text, error = false) {
  const m = $('message');
  m.textContent = text;
  m.classList.toggle('error', error);
  m.hidden = !text;
  clearTimeout(sayTimer);
  if (text && !error) sayTimer = setTimeout(() => say(''), 6000);
}

// --- setup ------------------------------------------------------------------------------

function renderProfiles() {
  const box = $('profiles');
  if (!state.profiles) return;
  const current = (state.settings && state.settings.profile) || box.dataset.chosen || 'counter';
  box.replaceChildren();
  for (const [name, p] of Object.entries(state.profiles)) {
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'radio';
    input.name = 'profile';
    input.value = name;
    input.checked = name === current;
    input.addEventListener('change', () => { box.dataset.chosen = name; });
    const strong = document.createElement('strong');
    strong.textContent = ` ${p.label[state.lang]}`;
    const help = document.createElement('span');
    help.className = 'hint';
    help.textContent = ` — ${tr(`profile_${name}_help`)}`;
    label.append(input, strong, help);
    box.append(label);
  }
}

const hasPolicy = (pol) => !!pol && ['lg_codes', 'prefectures', 'tiers'].some((k) => (pol[k] || []).length);

function renderPrefectures() {
  const sel = $('accept-pref');
  if (!state.reasons) return;
  const chosen = new Set([...sel.selectedOptions].map((o) => o.value));
  if (!sel.options.length && state.settings && state.settings.policy) {
    for (const c of state.settings.policy.prefectures || []) chosen.add(c);
  }
  // The prefecture names come from reasons.json (the CLI's list, in code order).
  const names = Object.entries(state.reasons.prefectures_en);
  sel.replaceChildren();
  PREFECTURE_CODES.forEach((code, i) => {
    const [ja, en] = names[i] || [code, code];
    const o = new Option(`${code} ${state.lang === 'en' ? en : ja}`, code);
    o.selected = chosen.has(code);
    sel.append(o);
  });
}

// The settings' policy, or an error naming what is wrong.
function readPolicy() {
  const lg = $('accept-lg').value.split(/[,、，\s]+/).map((c) => c.trim()).filter(Boolean);
  const policy = {
    lg_codes: lg.map((c) => c.normalize('NFKC')),
    prefectures: [...$('accept-pref').selectedOptions].map((o) => o.value),
    tiers: $('accept-tier').value ? [$('accept-tier').value] : [],
  };
  const profile = state.profiles[(document.querySelector('input[name=profile]:checked') || {}).value || 'counter'];
  withPolicy(profile, policy); // throws RangeError naming the bad codes
  return policy;
}

// The profile the shop chose, narrowed to whom it serves.
function activeProfile() {
  const profile = state.profiles[state.settings.profile];
  return state.settings.policy ? withPolicy(profile, state.settings.policy) : profile;
}

// The set-up QR (issuer/web/home.py): a link to this app whose fragment names
// the trust list and the anchor's RFC 7638 thumbprint.  Returns null for anything else.
export function parseSetup(text) {
  let url;
  try {
    url = new URL(String(text).trim());
  } catch {
    return null;
  }
  const p = new URLSearchParams(url.hash.replace(/^#/, ''));
  const tl = p.get('tl');
  const a = p.get('a');
  if (p.get('setup') !== '1' || !tl || !a || !/^[A-Za-z0-9_-]{43}$/.test(a)) return null;
  try {
    const u = new URL(tl);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
  } catch {
    return null;
  }
  return { source: tl, thumbprint: a };
}

// The key comes over the network; it is pinned only if it is the one the
// QR names, so the printed QR, not the server, is the trust decision.
async function applySetup(text) {
  const out = $('setup-qr-state');
  const s = parseSetup(text);
  const fail = (msg) => {
    out.textContent = msg;
    out.classList.add('error');
    out.hidden = false;
    say(msg, true);
    return false;
  };
  if (!s) return fail(tr('setup_qr_bad'));
  let jwk;
  try {
    const r = await fetch(new URL('trust-anchor', s.source), { cache: 'no-store', credentials: 'omit', redirect: 'error' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const j = await r.json();
    jwk = { kty: j.kty, crv: j.crv, x: j.x, y: j.y };
  } catch (e) {
    return fail(tr('setup_qr_fetch', { msg: e && e.message }));
  }
  let anchor;
  try {
    anchor = await loadAnchor(JSON.stringify(jwk));
  } catch {
    return fail(tr('setup_qr_mismatch'));
  }
  if (anchor.kid !== s.thumbprint) return fail(tr('setup_qr_mismatch'));
  $('anchor').value = JSON.stringify(jwk);
  $('source').value = s.source;
  out.textContent = `✓ ${tr('setup_qr_ok', { kid: anchor.kid })}`;
  out.classList.remove('error');
  out.hidden = false;
  say('');
  await showThumb();
  return true;
}

let stopSetupCamera = null;

async function setupCamera() {
  if (stopSetupCamera) stopSetupCamera();
  $('setup-video').hidden = false;
  try {
    stopSetupCamera = await startCamera($('setup-video'), async (text) => {
      if (stopSetupCamera) stopSetupCamera();
      stopSetupCamera = null;
      $('setup-video').hidden = true;
      await applySetup(text);
    });
  } catch (e) {
    $('setup-video').hidden = true;
    say(tr('camera_failed', { msg: e && e.message }), true);
  }
}

async function setupFromImage(file) {
  if (!file) return;
  let texts = [];
  try {
    texts = await decodeImage(file);
  } catch {
    texts = [];
  }
  if (!texts.length) {
    say(tr('no_qr'), true);
    return;
  }
  await applySetup(texts[0]);
}

async function showThumb() {
  const text = $('anchor').value.trim();
  const out = $('anchor-thumb');
  if (!text) {
    out.hidden = true;
    return;
  }
  try {
    const a = await loadAnchor(text);
    out.textContent = `${tr('anchor_thumb')}: ${a.kid}`;
    out.classList.remove('error');
  } catch {
    out.textContent = tr('anchor_bad');
  }
  out.hidden = false;
}

function openSetup() {
  stopCamera();
  const s = state.settings || {};
  $('anchor').value = s.anchor || '';
  $('source').value = s.source || new URL('../trust-list', location.href).href;
  const pol = s.policy || {};
  $('accept-lg').value = (pol.lg_codes || []).join(', ');
  $('accept-tier').value = (pol.tiers || [])[0] || '';
  $('accept-pref').replaceChildren();
  renderProfiles();
  renderPrefectures();
  showThumb();
  show('setup');
}

async function saveSetup(event) {
  event.preventDefault();
  let anchor;
  if (!$('anchor').value.trim()) {
    say(tr('setup_need'), true);
    return;
  }
  try {
    anchor = await loadAnchor($('anchor').value);
  } catch {
    say(tr('anchor_bad'), true);
    return;
  }
  let policy;
  try {
    policy = readPolicy();
  } catch (e) {
    say(tr('policy_bad', { msg: e.message }), true);
    return;
  }
  const chosen = document.querySelector('input[name=profile]:checked');
  const changedAnchor = !state.anchor || state.anchor.kid !== anchor.kid;
  state.settings = {
    anchor: $('anchor').value.trim(),
    source: $('source').value.trim(),
    profile: chosen ? chosen.value : 'counter',
    policy,
    lang: state.lang,
  };
  state.anchor = anchor;
  await setKv(state.db, 'settings', state.settings);
  if (changedAnchor) {
    // Data verified against another anchor is not trusted under this one.
    state.bundle = null;
    await setKv(state.db, 'bundle', null);
  }
  say('');
  applyWords();
  show('scan');
  await doSync();
}

// --- trust data -------------------------------------------------------------------------

function dataStatus(now = nowSec()) {
  const b = state.bundle;
  const p = state.profiles && state.settings && state.profiles[state.settings.profile];
  if (!b || !p) return { kind: 'none' };
  const { trustList, statusLists } = b.expiries();
  const late = (exp, grace) => (exp !== null && now >= exp ? (now < exp + grace ? 'warn' : 'stale') : 'ok');
  const kinds = [late(trustList, p.trust_list_grace), late(statusLists, p.status_list_grace)];
  const kind = kinds.includes('stale') ? 'stale' : kinds.includes('warn') ? 'warn' : 'ok';
  // The moment checks stop: the first part to run out, with the profile's grace.
  const ends = [trustList === null ? null : trustList + p.trust_list_grace,
    statusLists === null ? null : statusLists + p.status_list_grace].filter((e) => e !== null);
  const until = ends.length ? Math.min(...ends) : null;
  return { kind, age: now - b.createdAt, at: b.createdAt, until, left: until === null ? null : until - now };
}

function renderDataState() {
  const el = $('data-state');
  if (!el) return;
  const s = dataStatus();
  el.classList.remove('stale', 'warn');
  el.dataset.state = s.kind;
  if (s.kind === 'none') {
    el.textContent = tr('data_none');
    el.classList.add('stale');
    return;
  }
  const fresh = tr('data_fresh', { age: ago(s.age, state.lang), time: momentText(s.at, state.lang) });
  if (s.kind === 'stale') {
    el.textContent = `${tr('data_stale')} ${fresh}`;
    el.classList.add('stale');
  } else if (s.kind === 'warn') {
    el.textContent = `${tr('data_grace')} ${fresh}`;
    el.classList.add('warn');
  } else {
    el.textContent = fresh;
  }
  if (s.kind !== 'stale' && s.until !== null) {
    const soon = s.left < WARN_BEFORE;
    const line = document.createElement('span');
    line.className = 'offline-left';
    line.id = 'offline-left';
    line.textContent = ` ${tr(soon ? 'offline_soon' : 'offline_left', { left: left(s.left, state.lang), time: momentText(s.until, state.lang) })}`;
    el.append(line);
    el.dataset.soon = soon ? '1' : '';
    if (soon) el.classList.add('warn');
  }
}

async function keepBundle(result) {
  state.bundle = result.bundle;
  await setKv(state.db, 'bundle', { raw: result.bundle.dumps(), synced_at: nowSec() });
  renderDataState();
  const n = result.bundle.trustList.issuers.size;
  say(tr('synced', { n, m: result.bundle.status.size }));
  document.body.dataset.syncs = String(Number(document.body.dataset.syncs || 0) + 1);
}

async function doSync() {
  if (!state.anchor || !state.settings) return;
  if (state.syncing) return state.syncing;
  state.syncing = (async () => {
    try {
      await keepBundle(await sync(state.settings.source, [state.anchor], { now: nowSec() }));
    } catch (e) {
      const msg = e instanceof BundleError ? `${e.code}: ${e.description}` : String(e && e.message);
      say(tr(navigator.onLine ? 'sync_failed' : 'offline', { msg }), navigator.onLine);
    } finally {
      state.syncing = null;
    }
  })();
  return state.syncing;
}

async function syncFromFile(file) {
  try {
    const text = (await file.text()).trim();
    await keepBundle(await sync(file.name, [state.anchor], { now: nowSec(), text }));
  } catch (e) {
    const msg = e instanceof BundleError ? `${e.code}: ${e.description}` : String(e && e.message);
    say(tr('sync_failed', { msg }), true);
  }
}

// --- checking ---------------------------------------------------------------------------

let audio = null;

function feedback(ok) {
  if (navigator.vibrate) navigator.vibrate(ok ? 120 : [220, 90, 220]);
  try {
    audio = audio || new AudioContext();
    const beeps = ok ? [[1046, 0, 0.12]] : [[233, 0, 0.18], [233, 0.26, 0.18]];
    for (const [freq, at, len] of beeps) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      osc.type = ok ? 'sine' : 'square';
      gain.gain.value = 0.08;
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + at);
      osc.stop(audio.currentTime + at + len);
    }
  } catch {
    // No audio on this device: the screen says it all.
  }
}

async function check(text) {
  if (!text || !text.trim()) return null;
  if (!state.bundle) {
    say(tr('data_none'), true);
    return null;
  }
  const result = await verify(text, state.bundle, activeProfile(), { now: nowSec(), replay: state.replay });
  state.last = result;
  say(''); // the verdict alone: nothing else competes for the eye
  if (result.ok && keepsRoster()) {
    await addToRoster(state.db, entryOf(result, nowSec()));
    await renderRoster();
  }
  renderResult(result);
  show('result');
  feedback(result.ok);
  return result;
}

function row(dl, label, value, note = '') {
  const dt = document.createElement('dt');
  dt.textContent = label;
  const dd = document.createElement('dd');
  dd.textContent = value;
  if (note) {
    const span = document.createElement('span');
    span.className = 'note';
    span.textContent = note;
    dd.append(span);
  }
  dl.append(dt, dd);
}

// A date as 和暦 with the ISO date beside it (as the CLI prints it), or English.
function dateRow(dl, label, iso) {
  if (state.lang === 'en') row(dl, label, dateText(iso, 'en'));
  else row(dl, label, wareki(iso, 'ja'), `（${iso}）`);
}

const SVG = 'http://www.w3.org/2000/svg';

// Drawn, not a font glyph: the same big mark on every device.
function mark(ok) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 100 100');
  svg.setAttribute('class', 'mark-svg');
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', ok ? 'M20 52 L42 74 L80 28' : 'M26 26 L74 74 M74 26 L26 74');
  svg.append(path);
  return svg;
}

function renderResult(r) {
  const lang = state.lang;
  const view = $('view-result');
  view.classList.toggle('ok', r.ok);
  view.classList.toggle('ng', !r.ok);
  view.dataset.reason = r.reason;
  $('mark').replaceChildren(mark(r.ok));
  $('mark').dataset.mark = r.ok ? '✓' : '✗';
  $('verdict-text').textContent = tr(r.ok ? 'valid' : 'invalid');
  $('verdict-text').setAttribute('aria-label', `${r.ok ? '✓' : '✗'} ${tr(r.ok ? 'valid' : 'invalid')}`);
  const dl = $('details');
  dl.replaceChildren();
  if (r.issuer) {
    // As the CLI prints it: 軽井沢町（長野県）, Karuizawa (Nagano).
    const pref = state.reasons.prefectures_en[r.issuer.prefecture] || r.issuer.prefecture;
    const name = lang === 'en' ? `${r.issuer.name_en || r.issuer.name} (${pref})` : `${r.issuer.name}（${r.issuer.prefecture}）`;
    row(dl, tr('municipality'), name);
  }
  if (r.tier) {
    const words = state.reasons.tiers[r.tier];
    row(dl, tr('tier'), words ? words[lang] : r.tier);
  }
  if (r.ok && r.valid_until !== null) {
    // exp is the first instant no longer valid; a card shows the last valid day.
    dateRow(dl, tr('valid_until'), jst(r.valid_until - 1).iso);
  }
  const person = r.claims && r.claims.person;
  if (person && typeof person === 'object') {
    const name = [person.family_name, person.given_name].filter(Boolean).join(' ');
    const kana = [person.family_name_kana, person.given_name_kana].filter(Boolean).join(' ');
    if (name) row(dl, tr('name'), name);
    if (kana) row(dl, tr('kana'), kana);
    if (typeof person.birthdate === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(person.birthdate)) {
      dateRow(dl, tr('birthdate'), person.birthdate);
    }
  }
  const res = r.claims && r.claims.primary_residence;
  if (res && typeof res.name === 'string') row(dl, tr('residence'), res.name);
  const words = state.reasons.reasons[r.reason];
  $('reason-text').textContent = r.ok ? '' : words ? words[lang] : r.reason;
  $('reason-code').textContent = r.ok ? '' : `${tr('code')}: ${r.reason}`;
  const ul = $('warnings');
  ul.replaceChildren();
  for (const w of r.warnings) {
    const li = document.createElement('li');
    const ww = state.reasons.warnings[w];
    li.textContent = `⚠ ${ww ? ww[lang] : w}`;
    ul.append(li);
  }
}

// --- scanning ---------------------------------------------------------------------------

function stopCamera() {
  if (state.stopCamera) {
    state.stopCamera();
    state.stopCamera = null;
  }
  $('camera-stop').hidden = true;
}

async function camera() {
  stopCamera();
  try {
    state.stopCamera = await startCamera($('video'), (text) => check(text));
    $('camera-stop').hidden = false;
  } catch (e) {
    say(tr('camera_failed', { msg: e && e.message }), true);
  }
}

async function fromImage(file) {
  if (!file) return;
  let texts;
  try {
    texts = await decodeImage(file);
  } catch (e) {
    say(`${tr('no_qr')} (${e && e.message})`, true);
    return;
  }
  if (!texts.length) {
    say(tr('no_qr'), true);
    return;
  }
  say('');
  await check(texts[0]);
}

// --- start ------------------------------------------------------------------------------

async function loadJson(path) {
  const r = await fetch(new URL(path, import.meta.url));
  return r.json();
}

function wire() {
  $('lang').addEventListener('click', async () => {
    state.lang = state.lang === 'ja' ? 'en' : 'ja';
    applyWords();
    if (state.settings) {
      state.settings.lang = state.lang;
      await setKv(state.db, 'settings', state.settings);
    }
  });
  $('setup-form').addEventListener('submit', saveSetup);
  $('anchor').addEventListener('input', showThumb);
  $('setup-camera').addEventListener('click', setupCamera);
  $('setup-image').addEventListener('change', async (e) => {
    await setupFromImage(e.target.files[0]);
    e.target.value = '';
  });
  $('anchor-file').addEventListener('change', async (e) => {
    const f = e.target.files[0];
    if (f) $('anchor').value = await f.text();
    showThumb();
  });
  $('camera').addEventListener('click', camera);
  $('camera-stop').addEventListener('click', stopCamera);
  $('image').addEventListener('change', async (e) => {
    await fromImage(e.target.files[0]);
    e.target.value = '';
  });
  $('wedge-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = $('wedge').value;
    $('wedge').value = '';
    await check(text);
  });
  $('sync').addEventListener('click', () => doSync());
  $('roster-utf8').addEventListener('click', () => exportRoster('utf-8'));
  $('roster-sjis').addEventListener('click', () => exportRoster('shift_jis'));
  $('roster-clear').addEventListener('click', clearRosterAsked);
  $('bundle-file').addEventListener('change', async (e) => {
    if (e.target.files[0]) await syncFromFile(e.target.files[0]);
    e.target.value = '';
  });
  $('settings').addEventListener('click', openSetup);
  $('next').addEventListener('click', () => show('scan'));
  // A keyboard-wedge scanner types while the result is still shown: go back
  // to the scan view so its characters land in the wedge field.
  document.addEventListener('keydown', (e) => {
    if ($('view-result').hidden || e.key === 'Tab') return;
    if (e.key === 'Enter' && document.activeElement === $('next')) return;
    show('scan');
    $('wedge').focus();
  });
  window.addEventListener('online', () => doSync());
  setInterval(() => {
    renderDataState();
    if (navigator.onLine && state.bundle && nowSec() - state.bundle.createdAt > AUTO_SYNC_AFTER) doSync();
  }, 30_000);
}

async function main() {
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('sw.js').catch(() => {});
  }
  wire();
  [state.reasons, state.profiles] = await Promise.all([
    loadJson('./data/reasons.json'),
    loadJson('./data/profiles.json').then((j) => j.profiles),
  ]);
  state.db = await openDb();
  state.replay = new IdbReplayStore(state.db);
  state.settings = (await getKv(state.db, 'settings')) || null;
  // Japanese first, whatever the browser says; English only when chosen.
  state.lang = (state.settings && state.settings.lang) || 'ja';
  backend().then((b) => { $('version').textContent = `${APP_VERSION} · QR: ${b}`; });
  applyWords();
  // Opened from the set-up QR by the phone's camera: set up from its fragment,
  // then drop it from the address bar (and from any bookmark made later).
  if (parseSetup(location.href)) {
    const link = location.href;
    history.replaceState(null, '', location.pathname + location.search);
    openSetup();
    $('setup-qr-state').hidden = true;
    await applySetup(link);
    document.body.dataset.ready = '1';
    return;
  }
  if (!state.settings) {
    openSetup();
    document.body.dataset.ready = '1';
    return;
  }
  try {
    state.anchor = await loadAnchor(state.settings.anchor);
    const saved = await getKv(state.db, 'bundle');
    if (saved && saved.raw) state.bundle = await Bundle.loads(saved.raw, [state.anchor]);
  } catch (e) {
    say(tr('sync_failed', { msg: e && e.message }), true);
  }
  applyWords();
  show('scan');
  document.body.dataset.ready = '1';
  if (navigator.onLine && (!state.bundle || nowSec() - state.bundle.createdAt > AUTO_SYNC_AFTER)) doSync();
}

// For tests and the benchmark: the app's own check path, without a camera.
window.dualresVerify = { check, sync: doSync, state, WORDS, applySetup };

main();
