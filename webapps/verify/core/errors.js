// Failures with the stable reason codes of verifier/reasons.py.  The wire layer
// throws; verify() catches and reports, exactly as the Python verifier does.

export class WireError extends Error {
  constructor(code, description) {
    super(description || code);
    this.code = code;
    this.description = description || code;
  }
}

export const malformed = (d) => new WireError('malformed', d);
export const tooLarge = (d) => new WireError('too_large', d);
