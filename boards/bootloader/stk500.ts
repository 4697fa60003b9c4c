/**
 * STK500 protocol version 1 constants: the subset optiboot answers and avrdude's `arduino`
 * programmer sends. Names and values as in Atmel AVR061 and optiboot's `stk500.h`.
 */

/** Replies. */
export const STK_OK = 0x10;
export const STK_INSYNC = 0x14;
/** Every command ends with this byte (the "CRC" is a constant space). */
export const CRC_EOP = 0x20;

/** Commands. */
export const STK_GET_SYNC = 0x30;
export const STK_GET_SIGN_ON = 0x31;
export const STK_SET_PARAMETER = 0x40;
export const STK_GET_PARAMETER = 0x41;
export const STK_SET_DEVICE = 0x42;
export const STK_SET_DEVICE_EXT = 0x45;
export const STK_ENTER_PROGMODE = 0x50;
export const STK_LEAVE_PROGMODE = 0x51;
export const STK_CHIP_ERASE = 0x52;
export const STK_LOAD_ADDRESS = 0x55;
export const STK_UNIVERSAL = 0x56;
export const STK_PROG_PAGE = 0x64;
export const STK_READ_PAGE = 0x74;
export const STK_READ_SIGN = 0x75;

/** GET_PARAMETER parameters optiboot answers specially (AVR061 §"Parameters"). */
export const PARM_STK_SW_MAJOR = 0x81;
export const PARM_STK_SW_MINOR = 0x82;

/** Bytes SET_DEVICE and SET_DEVICE_EXT carry before CRC_EOP (AVR061). */
export const SET_DEVICE_LENGTH = 20;
export const SET_DEVICE_EXT_LENGTH = 5;
/** UNIVERSAL carries one 4-byte ISP instruction. */
export const UNIVERSAL_LENGTH = 4;
