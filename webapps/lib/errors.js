// The one error of the wire code both apps share.  `code` is one of the
// verifier's stable reason codes (verifier/reasons.py), as on Python's
// verifier.wire.errors.WireError: the wire layer throws, the verifier
// catches and reports, and an app can show the code as it is.
export class WireError extends Error {
  constructor(code, description) {
    super(description || code);
    this.name = 'WireError';
    this.code = code;
    this.description = description || code;
  }
}

export const malformed = (description) => new WireError('malformed', description);
export const tooLarge = (description) => new WireError('too_large', description);
