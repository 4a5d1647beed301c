// Errors of the shared wire code.  `reason` is one of the verifier's stable
// reason codes (verifier/reasons.py), so an app can show it as it is.
export class WireError extends Error {
  constructor(reason, message) {
    super(message);
    this.name = 'WireError';
    this.reason = reason;
  }
}

export const malformed = (message) => new WireError('malformed', message);
export const tooLarge = (message) => new WireError('too_large', message);
