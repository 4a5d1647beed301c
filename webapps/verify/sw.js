// Offline after the first visit: every file the verifier needs (the QR
// decoder's WebAssembly included) is cached at install and served from the
// cache first (../lib/offline.js).  The trust list and status lists are never
// cached here: they go to the network, and the app keeps its own verified copy
// in IndexedDB.  Bump VERSION with any file change (the server sends this file
// with no-cache).
importScripts('../lib/offline.js');

const VERSION = 'v15'; // core/trustlist.js keyAllowsX5c shared by bundle.js and verify.js
const PRECACHE = [
  './',
  'index.html',
  'app.css',
  'app.js',
  'i18n.js',
  'roster.js',
  'scan.js',
  'store.js',
  'core/bundle.js',
  'core/json.js',
  'core/jws.js',
  'core/policy.js',
  'core/sdjwt.js',
  'core/statuslist.js',
  'core/trustlist.js',
  'core/verify.js',
  'core/x509.js',
  'data/cp932.json',
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
  '../lib/statuslist.js',
  '../lib/wareki.js',
  '../lib/shared.js',
  '../lib/transport.js',
  '../lib/vendor/pako/pako.mjs',
];

serveOffline({ app: 'verify', version: VERSION, precache: PRECACHE });
