// Runs webapps/lib/transport.js over cases Python wrote (argv[2], JSON) and
// prints what it made of each, for tests/test_webapps_lib.py to compare.
// `restore` ({x5c: {kid: chain}, types: {vct: [integrity]}}) stands in for the
// verifier's trust list, which puts back what the encoder left out.
import { readFileSync } from 'node:fs';
import { decode, encode, DICTIONARY_V1, DICTIONARY_V2 } from '../../webapps/lib/transport.js';

const cases = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const restorer = {
  x5c: (header) => cases.restore.x5c[header.kid] ?? null,
  types: () => cases.restore.types,
};
const run = (f) => {
  try {
    return { ok: f() };
  } catch (exc) {
    return { reason: exc.code ?? `uncaught ${exc.name}: ${exc.message}` };
  }
};
const out = {
  dictionary: Buffer.from(DICTIONARY_V1).toString('base64'),
  dictionary_v2: Buffer.from(DICTIONARY_V2).toString('base64'),
  encoded: cases.encode.map((compact) => run(() => encode(compact))),
  decoded: cases.decode.map((text) => run(() => decode(text, restorer))),
  decoded_bare: cases.decode.map((text) => run(() => decode(text))),
};
process.stdout.write(JSON.stringify(out));
