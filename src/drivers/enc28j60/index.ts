export { Enc28j60Nic, Enc28j60Error, type Enc28j60NicConfig, type Enc28j60ErrorCode, type Enc28j60Events } from './driver.js';
export { ENC28J60_DEFAULTS, type Enc28j60Options } from './options.js';
