/**
 * What can go wrong when flashing, as values: a `kind` to switch on, Node's `code` for the
 * generic handlers, and a `hint` a person can act on.
 */
export type FlashErrorKind =
  | 'no-such-port'
  | 'permission-denied'
  | 'not-a-serial-port'
  | 'no-answer'
  | 'wrong-board'
  | 'sketch-too-large'
  | 'verify-failed'
  | 'unknown-board'
  | 'hex-missing'
  | 'avrdude-missing'
  | 'build-failed'
  | 'toolchain-missing'
  | 'avrdude-failed'
  | 'interrupted';

const CODES: Record<FlashErrorKind, string> = {
  'no-such-port': 'ENOENT',
  'permission-denied': 'EACCES',
  'not-a-serial-port': 'ENOTTY',
  'no-answer': 'ETIMEDOUT',
  'wrong-board': 'ENODEV',
  'sketch-too-large': 'EFBIG',
  'verify-failed': 'EIO',
  'unknown-board': 'EINVAL',
  'hex-missing': 'ENOENT',
  'avrdude-missing': 'ENOENT',
  'build-failed': 'EIO',
  'toolchain-missing': 'ENOENT',
  'avrdude-failed': 'EIO',
  interrupted: 'EINTR',
};

export class FlashError extends Error {
  /** Node-style error code (ENOENT, EACCES, ETIMEDOUT, EFBIG, ...). */
  readonly code: string;

  constructor(
    readonly kind: FlashErrorKind,
    message: string,
    readonly details: {
      /** What to do about it, for a person. */
      readonly hint?: string;
      /** The tool's own words (avrdude/make stderr, trimmed). */
      readonly output?: string;
      readonly exitCode?: number | null;
    } = {},
  ) {
    super(message);
    this.name = 'FlashError';
    this.code = CODES[kind];
  }

  get hint(): string | undefined {
    return this.details.hint;
  }
}
