// Offline after the first visit: every file the verifier needs (the QR
// decoder's WebAssembly included) is cached at install and served from the
// cache first.  The trust list and status lists are never cached here: they
// go to the network, and the app keeps its own verified copy in IndexedDB.
// Bump VERSION with any file change (the server sends this file with no-cache).
const VERSION = 'dualres-verify-v1';
const PRECACHE = [
  './',
  'index.html',
  'app.css',
  'app.js',
  'i18n.js',
  'scan.js',
  'store.js',
  'core/bundle.js',
  'core/errors.js',
  'core/json.js',
  'core/jws.js',
  'core/sdjwt.js',
  'core/statuslist.js',
  'core/trustlist.js',
  'core/verify.js',
  'data/profiles.json',
  'data/reasons.json',
  'manifest.webmanifest',
  'icons/icon.svg',
  'icons/icon-192.png',
  'icons/icon-512.png',
  'vendor/zxing/reader/index.js',
  'vendor/zxing/share.js',
  'vendor/zxing/zxing_reader.wasm',
  '../lib/b64.js',
  '../lib/base45.js',
  '../lib/errors.js',
  '../lib/transport.js',
  '../lib/vendor/pako/pako.mjs',
];
const URLS = new Set(PRECACHE.map((p) => new URL(p, self.registration.scope).href));
const INDEX = new URL('./', self.registration.scope).href;

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(VERSION)
      // 'reload': never fill the new cache from a stale HTTP cache entry.
      .then((cache) => cache.addAll(PRECACHE.map((p) => new Request(p, { cache: 'reload' }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('dualres-verify-') && k !== VERSION).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (req.mode === 'navigate' && url.origin === self.location.origin && (url.href.split(/[?#]/)[0] === INDEX || url.pathname.endsWith('/verify/index.html'))) {
    event.respondWith(caches.match(INDEX).then((hit) => hit || fetch(req)));
    return;
  }
  const key = url.origin + url.pathname;
  if (!URLS.has(key)) return; // trust list, status lists: network only
  event.respondWith(caches.match(key).then((hit) => hit || fetch(req)));
});
