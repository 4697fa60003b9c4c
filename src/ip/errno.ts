/**
 * Errors at the API edge look like Node's system errors: `code`, `errno`, `syscall`, and the
 * address/port involved, so code written for node:dgram handles them unchanged.
 */
const ERRNO: Record<string, number> = {
  EACCES: -13,
  EINVAL: -22,
  EMSGSIZE: -90,
  EADDRINUSE: -98,
  EADDRNOTAVAIL: -99,
  ENETDOWN: -100,
  ENETUNREACH: -101,
  ENOBUFS: -105,
  ETIMEDOUT: -110,
  ECONNREFUSED: -111,
  EHOSTUNREACH: -113,
  ENOTFOUND: -3008,
};

export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  address?: string;
  port?: number;
}

export function systemError(code: string, syscall: string, address?: string, port?: number): SystemError {
  const where = address === undefined ? '' : port === undefined ? ` ${address}` : ` ${address}:${port}`;
  const error = new Error(`${syscall} ${code}${where}`) as SystemError;
  error.code = code;
  error.errno = ERRNO[code] ?? -1;
  error.syscall = syscall;
  if (address !== undefined) error.address = address;
  if (port !== undefined) error.port = port;
  return error;
}
