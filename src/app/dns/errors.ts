/**
 * Resolver errors, shaped like Node's `dns` module errors: `code` is one of the `dns.*` error
 * codes, `syscall` names the operation ('queryA', 'queryAaaa', 'getaddrinfo') and `hostname` the
 * name asked for. Message text follows Node: "queryA ENOTFOUND example.com".
 */
export type DnsErrorCode =
  | 'ENODATA'
  | 'EFORMERR'
  | 'ESERVFAIL'
  | 'ENOTFOUND'
  | 'ENOTIMP'
  | 'EREFUSED'
  | 'EBADQUERY'
  | 'EBADNAME'
  | 'EBADRESP'
  | 'ECONNREFUSED'
  | 'ETIMEOUT'
  | 'ECANCELLED';

export interface DnsError extends Error {
  code: DnsErrorCode;
  syscall: string;
  hostname: string;
  errno: undefined;
}

export function dnsError(code: DnsErrorCode, syscall: string, hostname: string, detail?: string): DnsError {
  const error = new Error(`${syscall} ${code} ${hostname}${detail ? ` (${detail})` : ''}`) as DnsError;
  error.code = code;
  error.syscall = syscall;
  error.hostname = hostname;
  error.errno = undefined;
  return error;
}
