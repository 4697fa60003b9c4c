import type { Clock, TimerHandle } from '../../src/time/clock.js';
import type { LanPort, VirtualLan } from '../lan/switch.js';
import { FCS_BYTES, INTERFRAME_GAP_BYTES, MIN_FRAME_BYTES, PREAMBLE_SFD_BYTES, byteTimeMs } from '../../src/wire/wire-time.js';
import {
  COMMON,
  COMMON_READ_ONLY,
  COMMON_SPACE,
  SOCKET,
  SOCKET_READ_ONLY,
  SOCKET_SPACE,
  commonName,
  isReservedCommon,
  isReservedSocket,
  socketName,
  type CommonRegisterName,
  type SocketRegisterName,
} from './registers.js';

/**
 * A register-accurate W5500 as an SPI slave, byte by byte, with socket 0 in MACRAW mode carrying
 * raw Ethernet frames (the chip's own TCP/IP is not emulated: spinet does all of it on the host).
 *
 * Faithful to the W5500 datasheet v1.0.9 where a driver could notice; docs/w5500.md lists every
 * rule with its source, and the decisions taken where the datasheet is silent. `strict` turns
 * misuse that silicon punishes (or that corrupts data) into reported violations, so a driver that
 * passes here in strict mode works on the chip.
 *
 * Time. The chip keeps its own time, `chipNow()`: the injected clock plus the time SPI has taken —
 * each byte 8 SPI clocks (`spiClockHz`), a board-side wait between transactions (spiDelay) its
 * length — because a batch lands at one instant of the clock (the mock HAL) while on the chip its
 * bytes follow each other. Everything the chip does by itself (accepting a command, its effect a
 * little later, a frame on the wire, a frame arriving at 100 Mbit/s, the end of a reset) is an
 * event at a chip time, applied as soon as the chip's time passes it: between two bytes of an SPI
 * frame if need be, so a 16-bit register read byte by byte can tear as on silicon.
 */

export interface W5500EmulatorOptions {
  clock: Clock;
  /** Report driver misuse that silicon punishes (see the class comment). */
  strict?: boolean;
  onStrictViolation?: (message: string) => void;
  label?: string;
  /** SPI clock in Hz, for the chip's sense of time between bytes: default 8 MHz (an Uno's fastest). */
  spiClockHz?: number;
  /**
   * Frames from the LAN arrive at the negotiated speed (`plugInto`): the chip has one only once
   * its last bit is in, and frames queue on the wire. Off: at once (a flood is a flood).
   */
  rxWireTime?: boolean;
  /** After a PHY reset, RSTn or the cable coming back, the link is up after this (auto-negotiation). */
  autonegotiationMs?: number;
  /** VERSIONR (0x04 on every W5500; another value emulates a different chip for the driver's probe). */
  version?: number;
}

/** What the chip did with frames, independent of any driver (tests read it). */
export interface W5500EmulatorStats {
  rxFramesStored: number;
  rxFilteredOut: number;
  rxDroppedFull: number;
  rxDroppedTooLong: number;
  rxDroppedLinkDown: number;
  rxDroppedClosed: number;
  txFramesSent: number;
  /** Frames handed to SEND that never reached the wire (link down, stuck transmitter, closed socket). */
  txFramesLost: number;
  commands: number;
  spiFrames: number;
}

/** Faults for tests: what field reports say a W5500 (or the wiring to it) does. docs/w5500.md §Field failures. */
export type W5500Fault =
  /** The next stored frame's length header reads `value` (sticky: every frame's, until socket 0 is opened again). */
  | { kind: 'corrupt-header'; value: number; sticky?: boolean }
  /** The next time INTn should fall, the pin stays high (until the interrupt is cleared and rises anew). */
  | { kind: 'missed-edge' }
  /** The link goes down while the next frame is on the wire, for `downMs` (default 50). */
  | { kind: 'link-drop-mid-tx'; downMs?: number }
  /** The next command is never accepted: Sn_CR keeps reading it until the chip is reset. */
  | { kind: 'stuck-command' }
  /**
   * The next read of one of socket 0's changing 16-bit registers straddles a change: its high byte
   * is read before the next frame is stored (Sn_RX_RSR, Sn_RX_WR) or the transmission in progress
   * ends (Sn_TX_FSR, Sn_TX_RD), its low byte after.
   */
  | { kind: 'tear'; register: TornRegister };

export type TornRegister = 'Sn_RX_RSR' | 'Sn_RX_WR' | 'Sn_TX_FSR' | 'Sn_TX_RD';

/** MISO when the chip does not answer: floating high, or held low. */
export type MisoMode = 'normal' | 'zeros' | 'ones';

// ---- Bits and values (DS-W §4) ------------------------------------------------------------------
const MR_RST = 0x80;
const PHY_RST = 0x80, PHY_OPMD = 0x40, PHY_OPMDC = 0x38, PHY_DPX = 0x04, PHY_SPD = 0x02, PHY_LNK = 0x01;
const SN_MR_PROTOCOL = 0x0f, SN_MR_MFEN = 0x80, SN_MR_BCASTB = 0x40, SN_MR_MMB = 0x20, SN_MR_MIP6B = 0x10;
const PROTOCOL_TCP = 0x01, PROTOCOL_UDP = 0x02, PROTOCOL_IPRAW = 0x03, PROTOCOL_MACRAW = 0x04;
const CR_OPEN = 0x01, CR_LISTEN = 0x02, CR_CONNECT = 0x04, CR_DISCON = 0x08, CR_CLOSE = 0x10;
const CR_SEND = 0x20, CR_SEND_MAC = 0x21, CR_SEND_KEEP = 0x22, CR_RECV = 0x40;
const IR_SEND_OK = 0x10, IR_RECV = 0x04;
const SOCK_CLOSED = 0x00, SOCK_INIT = 0x13, SOCK_UDP = 0x22, SOCK_IPRAW = 0x32, SOCK_MACRAW = 0x42;
const VERSION = 0x04;
const BUFFER_SIZES = new Set([0, 1, 2, 4, 8, 16]);
const TOTAL_KB = 16;
const MAX_FRAME = 1514;

// ---- Timing: datasheet figures, and the emulator's decisions where it gives none (docs/w5500.md) ----
/** Sn_CR reads the command until the chip accepts it (decision: 1 µs). */
const COMMAND_ACCEPT_MS = 0.001;
/** "Even though Sn_CR is cleared to 0x00, the command is still being processed" (p.46): decision 10 µs. */
const COMMAND_EFFECT_MS = 0.01;
/** MR.RST reads 1 until the reset is done (decision: 1 ms; LNX-WIZ waits 5 ms, ARD-ETH polls up to 20 ms). */
const SOFT_RESET_MS = 1;
/** After RSTn is released the chip is not ready until its PLL locks: 1 ms at most (DS-W §5.5.1). */
const PLL_LOCK_MS = 1;
/** INTLEVEL's wait unit: 4 PLL clocks of 150 MHz (DS-W §4.1 INTLEVEL). */
const IAWT_UNIT_MS = 4 / 150_000;

interface ChipEvent {
  at: number;
  seq: number;
  run: () => void;
  cancelled?: boolean;
}

type SpiPhase =
  | { kind: 'header'; bytes: number[] }
  | { kind: 'data'; block: number; address: number; write: boolean; fixed: number; reported: boolean }
  | { kind: 'ignore' };

interface Transmission {
  /** TX pointer where the frame ends (Sn_TX_WR at SEND). */
  end: number;
  event?: ChipEvent;
  /** The link dropped while it was on the wire. */
  lost?: boolean;
}

class Socket {
  readonly regs = new Uint8Array(SOCKET_SPACE);
  ir = 0;
  sr = SOCK_CLOSED;
  /** The command Sn_CR reads (0 once accepted). */
  command = 0;
  /** Sn_MR as it was at OPEN: what the socket runs in. */
  mode = 0;
  /** The chip's read pointer: moves to Sn_RX_RD when RECV takes effect. */
  rxRead = 0;
  rxWrite = 0;
  txRead = 0;
  /** Where the data handed over by SEND ends (Sn_TX_WR at the last SEND accepted). */
  txHanded = 0;
  transmitting: Transmission | undefined;
  /** SENDs accepted while a frame was on the wire (a strict violation), in order. */
  readonly queued: number[] = [];
  /** The link went away under a transmission (or a SEND found it down): nothing more goes out. */
  txStuck = false;
  /** Bumped by every reset: a command's effect still due from before one is void. */
  generation = 0;

  constructor(readonly index: number) {
    this.reset();
  }

  reset(): void {
    this.generation++;
    this.regs.fill(0);
    // DS-W §4.2 reset values.
    this.regs.fill(0xff, 0x06, 0x0c); // Sn_DHAR
    this.regs[0x16] = 0x80; // Sn_TTL
    this.regs[0x1e] = 0x02; // Sn_RXBUF_SIZE: 2 KB
    this.regs[0x1f] = 0x02; // Sn_TXBUF_SIZE
    this.regs[0x2c] = 0xff; // Sn_IMR
    this.regs[0x2d] = 0x40; // Sn_FRAG 0x4000
    this.ir = 0;
    this.sr = SOCK_CLOSED;
    this.command = 0;
    this.mode = 0;
    this.rxRead = this.rxWrite = this.txRead = this.txHanded = 0;
    this.transmitting = undefined;
    this.queued.length = 0;
    this.txStuck = false;
  }

  reg16(offset: number): number {
    return (this.regs[offset]! << 8) | this.regs[offset + 1]!;
  }

  setReg16(offset: number, value: number): void {
    this.regs[offset] = (value >> 8) & 0xff;
    this.regs[offset + 1] = value & 0xff;
  }

  get rxSizeKb(): number {
    return this.regs[0x1e]!;
  }

  get txSizeKb(): number {
    return this.regs[0x1f]!;
  }

  get rxSize(): number {
    return BUFFER_SIZES.has(this.rxSizeKb) ? this.rxSizeKb * 1024 : 0;
  }

  get txSize(): number {
    return BUFFER_SIZES.has(this.txSizeKb) ? this.txSizeKb * 1024 : 0;
  }

  get received(): number {
    return (this.rxWrite - this.rxRead) & 0xffff;
  }

  get handedOver(): number {
    return (this.txHanded - this.txRead) & 0xffff;
  }

  get open(): boolean {
    return this.sr !== SOCK_CLOSED;
  }
}

export class W5500Emulator {
  readonly strictViolations: string[] = [];
  readonly stats: W5500EmulatorStats = {
    rxFramesStored: 0, rxFilteredOut: 0, rxDroppedFull: 0, rxDroppedTooLong: 0, rxDroppedLinkDown: 0, rxDroppedClosed: 0,
    txFramesSent: 0, txFramesLost: 0, commands: 0, spiFrames: 0,
  };
  /** Every frame the chip put on the wire (padded, without FCS), when `recordTransmitted`. */
  readonly transmitted: Uint8Array[] = [];
  recordTransmitted = false;
  readonly label: string;

  private readonly clock: Clock;
  private readonly strict: boolean;
  private readonly onStrictViolation?: (message: string) => void;
  private readonly byteMs: number;
  private readonly rxWireTime: boolean;
  private readonly autonegotiationMs: number;
  private readonly version: number;

  private readonly common = new Uint8Array(COMMON_SPACE);
  private readonly sockets = Array.from({ length: 8 }, (_, n) => new Socket(n));
  private readonly txMemory = new Uint8Array(TOTAL_KB * 1024);
  private readonly rxMemory = new Uint8Array(TOTAL_KB * 1024);

  // Time and events.
  /** How far the chip's time is ahead of the clock: the SPI bytes and board-side waits so far. */
  private spiAheadMs = 0;
  private readonly events: ChipEvent[] = [];
  private eventSeq = 0;
  private processing = false;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;

  // SPI.
  private selected = false;
  private phase: SpiPhase = { kind: 'ignore' };
  private miso: MisoMode = 'normal';
  /** A soft reset (MR.RST) is in progress until then. */
  private resetUntil = -Infinity;
  /** After RSTn the chip does not answer until its PLL has locked. */
  private readyAt = -Infinity;
  /** The host pulsed RSTn (its accesses before PLL lock are misuse); a power glitch is not the host's doing. */
  private resetByHost = false;
  private notReadyReported = false;
  /**
   * The chip reset without the host's doing and the host has not yet looked (read an Sn_SR, or
   * reset the chip itself): what it does meanwhile follows a state that is gone, not misuse.
   */
  private resetUnseen = false;

  // PHY and cable.
  private port: LanPort | undefined;
  private cables = 0;
  private cableUp = true;
  private phyInReset = false;
  /** The link is negotiated (cable up, PHY out of reset) from this chip time on. */
  private linkAt = 0;
  private linkEvent: ChipEvent | undefined;
  /** What the PHY runs at since its last reset (PHYCFGR's OPMD/OPMDC, or the pins: all capable). */
  private phyMode = { fullDuplex: true, mbps: 100 as 10 | 100, powerDown: false };
  private reportedLink = true;
  private rxWireFreeAt = 0;

  // Interrupt pin.
  private pinAsserted = false;
  private pinEvent: ChipEvent | undefined;
  private readonly interruptListeners = new Set<(asserted: boolean) => void>();

  // Faults.
  private corruptHeader: { value: number; sticky: boolean } | undefined;
  private missEdge = false;
  private edgeMissed = false;
  private dropLinkMidTx: number | undefined;
  private stuckNextCommand = false;
  /** A command that will never be accepted (the stuck-command fault): writes over it are the fault's doing. */
  private stuckSocket: number | undefined;
  private tear: TornRegister | undefined;
  private readonly heldFrames: Uint8Array[] = [];
  private heldCompletion: (() => void) | undefined;

  constructor(options: W5500EmulatorOptions) {
    this.clock = options.clock;
    this.strict = options.strict ?? false;
    this.onStrictViolation = options.onStrictViolation;
    this.label = options.label ?? 'w5500';
    this.byteMs = 8000 / (options.spiClockHz ?? 8e6);
    this.rxWireTime = options.rxWireTime ?? false;
    this.autonegotiationMs = options.autonegotiationMs ?? 1;
    this.version = options.version ?? VERSION;
    this.resetCommon();
    // Powered long ago: the PHY has its link as soon as a cable is plugged in.
    this.linkAt = this.clock.now();
  }

  // ---- Time -------------------------------------------------------------------------------------

  /** The chip's time: the clock's, plus the time SPI has taken. */
  chipNow(): number {
    return this.clock.now() + this.spiAheadMs;
  }

  /** A board-side wait between transactions (SpiSlave.spiDelay): time passes on the chip. */
  spiDelay(us: number): void {
    this.spiAheadMs += us / 1000;
    this.processDue();
  }

  private at(delayMs: number, run: () => void): ChipEvent {
    const event: ChipEvent = { at: this.chipNow() + delayMs, seq: this.eventSeq++, run };
    let i = this.events.length;
    while (i > 0 && (this.events[i - 1]!.at > event.at || (this.events[i - 1]!.at === event.at && this.events[i - 1]!.seq > event.seq))) i--;
    this.events.splice(i, 0, event);
    this.armTimer();
    return event;
  }

  private cancel(event: ChipEvent | undefined): void {
    if (!event) return;
    event.cancelled = true;
    const i = this.events.indexOf(event);
    if (i >= 0) this.events.splice(i, 1);
  }

  /** Apply every event whose time the chip has reached, in order (events may add events). */
  private processDue(): void {
    if (this.processing) return;
    this.processing = true;
    try {
      for (;;) {
        const next = this.events[0];
        if (!next || next.at > this.chipNow()) break;
        this.events.shift();
        if (!next.cancelled) next.run();
      }
    } finally {
      this.processing = false;
    }
    this.armTimer();
  }

  private armTimer(): void {
    const next = this.events[0]?.at ?? Infinity;
    if (this.timer?.pending && this.timerAt <= next) return;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = next;
    if (next === Infinity) return;
    this.timer = this.clock.schedule(Math.max(0, next - this.chipNow()), () => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.processDue();
    });
  }

  // ---- SPI slave (DS-W §2.2–2.4) ----------------------------------------------------------------

  spiSelect(): void {
    if (this.selected) this.spiDeselect();
    this.selected = true;
    this.processDue();
    this.phase = { kind: 'header', bytes: [] };
    this.notReadyReported = false;
  }

  spiExchange(mosi: number): number {
    if (!this.selected) return 0xff; // SCSn high: MISO is high impedance
    this.spiAheadMs += this.byteMs;
    this.processDue();
    if (this.miso === 'zeros') return 0x00;
    if (this.miso === 'ones') return 0xff;
    if (this.chipNow() < this.readyAt) {
      if (this.resetByHost && !this.notReadyReported) {
        this.notReadyReported = true;
        this.violation(`SPI access ${((this.readyAt - this.chipNow()) * 1000).toFixed(0)} µs before the PLL has locked after RSTn (DS-W §5.5.1: wait 1 ms)`);
      }
      return 0x00;
    }
    const p = this.phase;
    switch (p.kind) {
      case 'ignore':
        return 0x00;
      case 'header': {
        p.bytes.push(mosi & 0xff);
        const echo = p.bytes.length; // 0x01, 0x02, 0x03 while the header is clocked
        if (p.bytes.length === 3) this.startData(p.bytes[0]!, p.bytes[1]!, p.bytes[2]!);
        return echo;
      }
      case 'data': {
        const address = p.address;
        p.address = (p.address + 1) & 0xffff;
        let out = 0x00;
        if (p.write) this.writeByte(p, address, mosi & 0xff);
        else out = this.readByte(p, address);
        if (p.fixed > 0 && --p.fixed === 0) this.phase = { kind: 'header', bytes: [] };
        return out;
      }
    }
  }

  spiDeselect(): void {
    if (!this.selected) return;
    this.selected = false;
    const p = this.phase;
    if (p.kind === 'header' && p.bytes.length > 0 && this.miso === 'normal' && this.chipNow() >= this.readyAt) {
      this.violation(`SPI frame ended after ${p.bytes.length} of its 3 header bytes`);
    }
    if (p.kind === 'data' && p.fixed > 0) this.violation(`fixed-length SPI frame ended ${p.fixed} data byte(s) early (DS-W §2.4)`);
    this.phase = { kind: 'ignore' };
    this.processDue();
  }

  private startData(high: number, low: number, control: number): void {
    this.stats.spiFrames++;
    const block = control >> 3;
    const write = (control & 0x04) !== 0;
    const om = control & 0x03;
    const fixed = om === 0 ? 0 : om === 3 ? 4 : om;
    if (block !== 0 && block % 4 === 0) {
      this.violation(`SPI frame to reserved block select ${block} (DS-W §2.2.2)`);
      this.phase = { kind: 'ignore' };
      return;
    }
    this.phase = { kind: 'data', block, address: (high << 8) | low, write, fixed, reported: false };
  }

  private readByte(p: Extract<SpiPhase, { kind: 'data' }>, address: number): number {
    if (p.block === 0) return this.readCommon(address);
    const socket = this.sockets[(p.block - 1) >> 2]!;
    switch ((p.block - 1) & 3) {
      case 0:
        return this.readSocket(socket, address);
      case 1:
        if (!this.bufferUsable(socket, 'TX', p)) return 0x00;
        return this.txMemory[this.txIndex(socket, address)]!;
      default: {
        if (!this.bufferUsable(socket, 'RX', p)) return 0x00;
        // Reading past what was received (RSR) returns bytes of old frames, or none at all.
        if (!p.reported && ((address - socket.rxRead) & 0xffff) >= socket.received) {
          p.reported = true;
          this.violation(`read of S${socket.index} RX buffer at 0x${address.toString(16)}, past what was received (RX_RD 0x${socket.rxRead.toString(16)} + RSR ${socket.received})`);
        }
        return this.rxMemory[this.rxIndex(socket, address)]!;
      }
    }
  }

  private writeByte(p: Extract<SpiPhase, { kind: 'data' }>, address: number, value: number): void {
    if (p.block === 0) return this.writeCommon(address, value);
    const socket = this.sockets[(p.block - 1) >> 2]!;
    switch ((p.block - 1) & 3) {
      case 0:
        return this.writeSocket(socket, address, value);
      case 1: {
        if (!this.bufferUsable(socket, 'TX', p)) return;
        // Free space is from where the data handed over by SEND ends to TX_RD + size (Sn_TX_FSR).
        const ahead = (address - socket.txRead) & 0xffff;
        if (!p.reported && (ahead < socket.handedOver || ahead >= socket.txSize)) {
          p.reported = true;
          this.violation(`write into S${socket.index} TX buffer at 0x${address.toString(16)}, past its free space (TX_RD 0x${socket.txRead.toString(16)}, ${socket.handedOver} bytes not yet sent, FSR ${this.freeSize(socket)})`);
        }
        this.txMemory[this.txIndex(socket, address)] = value;
        return;
      }
      default:
        if (!this.bufferUsable(socket, 'RX', p)) return;
        this.rxMemory[this.rxIndex(socket, address)] = value;
    }
  }

  /** A socket's buffers hold anything only while it is open with memory assigned. */
  private bufferUsable(socket: Socket, which: 'TX' | 'RX', p: { reported: boolean }): boolean {
    const size = which === 'TX' ? socket.txSize : socket.rxSize;
    if (!socket.open || size === 0) {
      if (!p.reported) {
        p.reported = true;
        this.violation(`S${socket.index} ${which} buffer accessed while ${socket.open ? 'it has no memory (size 0)' : 'the socket is closed'}`);
      }
      return false;
    }
    return true;
  }

  /** The 16-bit pointer is the offset in the block; the chip wraps it modulo the socket's size (DS-W §3.3, p.27). */
  private txIndex(socket: Socket, pointer: number): number {
    let base = 0;
    for (let n = 0; n < socket.index; n++) base += this.sockets[n]!.txSize;
    return (base + (pointer % socket.txSize)) % this.txMemory.length;
  }

  private rxIndex(socket: Socket, pointer: number): number {
    let base = 0;
    for (let n = 0; n < socket.index; n++) base += this.sockets[n]!.rxSize;
    return (base + (pointer % socket.rxSize)) % this.rxMemory.length;
  }

  // ---- Common registers (DS-W §4.1) -------------------------------------------------------------

  private resetCommon(): void {
    this.common.fill(0);
    this.common[0x19] = 0x07; // RTR 0x07D0: 200 ms
    this.common[0x1a] = 0xd0;
    this.common[0x1b] = 0x08; // RCR
    this.common[0x1c] = 0x28; // PTIMER
    this.common[0x26] = 0xff; // PMRU
    this.common[0x27] = 0xff;
    this.common[0x2e] = PHY_RST | PHY_OPMDC; // PHYCFGR "1011 1XXX": RST, pins say all capable
    for (const socket of this.sockets) {
      this.cancel(socket.transmitting?.event);
      socket.reset();
    }
    this.stuckSocket = undefined;
    this.corruptHeader = undefined;
    this.heldCompletion = undefined;
    this.updateInterrupt();
  }

  private readCommon(offset: number): number {
    switch (offset) {
      case 0x00:
        return this.chipNow() < this.resetUntil ? MR_RST : this.common[0]!;
      case 0x17:
        return this.sir;
      case 0x2e:
        return this.phycfgr;
      case 0x39:
        return this.version;
    }
    if (offset >= COMMON_SPACE) return 0x00;
    return this.common[offset]!;
  }

  private writeCommon(offset: number, value: number): void {
    if (this.chipNow() < this.resetUntil) {
      this.violation(`write to ${commonName(offset)} while MR.RST is still 1 (the reset is not done: poll MR)`);
      return;
    }
    if (offset >= COMMON_SPACE || isReservedCommon(offset)) {
      this.violation(`write to reserved ${commonName(offset)}`);
      return;
    }
    if (COMMON_READ_ONLY.has(offset)) {
      this.violation(`write to read-only ${commonName(offset)}`);
      return;
    }
    switch (offset) {
      case 0x00:
        if (value & MR_RST) {
          this.softReset();
          return;
        }
        this.common[0] = value;
        return;
      case 0x17:
        return; // SIR follows Sn_IR: cleared by clearing Sn_IR
      case 0x15:
        this.common[0x15] &= ~value; // IR: write 1 to clear
        this.updateInterrupt();
        return;
      case 0x16:
      case 0x18:
        this.common[offset] = value;
        this.updateInterrupt();
        return;
      case 0x2e:
        this.writePhycfgr(value);
        return;
    }
    this.common[offset] = value;
  }

  /** SIR bit n: socket n has an interrupt (Sn_IR ≠ 0), whatever SIMR says (DS-W §4.1 SIR). */
  private get sir(): number {
    let sir = 0;
    for (const socket of this.sockets) if (socket.ir !== 0) sir |= 1 << socket.index;
    return sir;
  }

  // ---- Socket registers (DS-W §4.2) -------------------------------------------------------------

  private readSocket(socket: Socket, offset: number): number {
    switch (offset) {
      case 0x01: return socket.command;
      case 0x02: return socket.ir;
      case 0x03:
        this.resetUnseen = false;
        return socket.sr;
      case 0x20: return this.highByte(socket, 'Sn_TX_FSR', this.freeSize(socket));
      case 0x21: return this.freeSize(socket) & 0xff;
      case 0x22: return this.highByte(socket, 'Sn_TX_RD', socket.txRead);
      case 0x23: return socket.txRead & 0xff;
      case 0x26: return this.highByte(socket, 'Sn_RX_RSR', socket.received);
      case 0x27: return socket.received & 0xff;
      case 0x2a: return this.highByte(socket, 'Sn_RX_WR', socket.rxWrite);
      case 0x2b: return socket.rxWrite & 0xff;
    }
    if (offset >= SOCKET_SPACE) return 0x00;
    return socket.regs[offset]!;
  }

  /** The high byte of a changing 16-bit value; a `tear` fault lets the change land right after it. */
  private highByte(socket: Socket, register: TornRegister, value: number): number {
    if (socket.index !== 0 || this.tear !== register) return value >> 8;
    this.tear = undefined;
    if (register === 'Sn_RX_RSR' || register === 'Sn_RX_WR') {
      for (const frame of this.heldFrames.splice(0)) this.storeFrame(frame);
    } else {
      const complete = this.heldCompletion;
      this.heldCompletion = undefined;
      complete?.();
    }
    return value >> 8;
  }

  private freeSize(socket: Socket): number {
    return Math.max(0, socket.txSize - socket.handedOver);
  }

  private writeSocket(socket: Socket, offset: number, value: number): void {
    if (this.chipNow() < this.resetUntil) {
      this.violation(`write to ${socketName(socket.index, offset)} while MR.RST is still 1 (the reset is not done: poll MR)`);
      return;
    }
    if (offset >= SOCKET_SPACE || isReservedSocket(offset)) {
      this.violation(`write to reserved ${socketName(socket.index, offset)}`);
      return;
    }
    if (SOCKET_READ_ONLY.has(offset)) {
      this.violation(`write to read-only ${socketName(socket.index, offset)}`);
      return;
    }
    switch (offset) {
      case 0x00:
        // Sn_MR is taken at OPEN (decision: silicon's behaviour for a change while open is undocumented).
        if (socket.open && value !== socket.regs[0]) this.violation(`S${socket.index}_MR written while the socket is open: it takes effect at the next OPEN`);
        socket.regs[0] = value;
        return;
      case 0x01:
        this.writeCommand(socket, value);
        return;
      case 0x02:
        socket.ir &= ~value; // write 1 to clear
        this.updateInterrupt();
        return;
      case 0x1e:
      case 0x1f: {
        const name = socketName(socket.index, offset);
        if (!BUFFER_SIZES.has(value)) this.violation(`${name} = ${value}: only 0, 1, 2, 4, 8 or 16 KB (DS-W §4.2)`);
        if (socket.open && value !== socket.regs[offset]) this.violation(`${name} changed while the socket is open`);
        socket.regs[offset] = value;
        return;
      }
    }
    socket.regs[offset] = value;
  }

  // ---- Socket commands (DS-W §4.2 Sn_CR, p.46–47) -----------------------------------------------

  private writeCommand(socket: Socket, value: number): void {
    if (socket.command !== 0) {
      // A write over a command the chip stopped accepting (the stuck-command fault) is the fault's doing.
      if (this.stuckSocket !== socket.index) this.violation(`S${socket.index}_CR = 0x${value.toString(16)} while Sn_CR still reads 0x${socket.command.toString(16)} (not yet accepted: poll Sn_CR until 0)`);
      return;
    }
    if (value === 0) return;
    this.stats.commands++;
    socket.command = value;
    if (this.stuckNextCommand) {
      this.stuckNextCommand = false;
      this.stuckSocket = socket.index;
      return;
    }
    this.at(COMMAND_ACCEPT_MS, () => this.acceptCommand(socket, value));
  }

  private acceptCommand(socket: Socket, command: number): void {
    if (socket.command !== command) return; // a reset came in between
    socket.command = 0;
    const generation = socket.generation;
    const effect = (run: () => void) => this.at(COMMAND_EFFECT_MS, () => {
      if (socket.generation === generation) run();
    });
    switch (command) {
      case CR_OPEN: {
        if (socket.open) this.violation(`OPEN on S${socket.index} while it is open (0x${socket.sr.toString(16)}): CLOSE it first`);
        const mode = socket.regs[0]!;
        effect(() => this.open(socket, mode));
        return;
      }
      case CR_CLOSE:
        effect(() => this.close(socket));
        return;
      case CR_SEND: {
        if (socket.sr !== SOCK_MACRAW) {
          this.violation(`SEND on S${socket.index} in state 0x${socket.sr.toString(16)} (spinet's emulator carries only MACRAW)`);
          return;
        }
        const end = socket.reg16(0x24);
        if (socket.transmitting && !socket.txStuck) {
          this.violation(`SEND on S${socket.index} while the previous frame is still on the wire (no SEND_OK yet): every driver waits for it`);
        }
        socket.txHanded = end;
        effect(() => this.send(socket, end));
        return;
      }
      case CR_RECV: {
        if (socket.sr !== SOCK_MACRAW) {
          this.violation(`RECV on S${socket.index} in state 0x${socket.sr.toString(16)}`);
          return;
        }
        const to = socket.reg16(0x28);
        const moved = (to - socket.rxRead) & 0xffff;
        if (moved === 0) this.violation(`RECV on S${socket.index} without moving Sn_RX_RD (still 0x${to.toString(16)}): nothing is freed`);
        else if (moved > socket.received) this.violation(`RECV on S${socket.index} with Sn_RX_RD 0x${to.toString(16)} past what was received (RSR ${socket.received} from 0x${socket.rxRead.toString(16)})`);
        if (moved === 0 || moved > socket.received) return;
        effect(() => {
          if (socket.sr === SOCK_MACRAW) socket.rxRead = to;
        });
        return;
      }
      case CR_LISTEN:
      case CR_CONNECT:
      case CR_DISCON:
      case CR_SEND_MAC:
      case CR_SEND_KEEP:
        this.violation(`S${socket.index}_CR 0x${command.toString(16)}: a TCP/UDP command (the chip's own TCP/IP is not emulated; spinet uses MACRAW)`);
        return;
      default:
        this.violation(`S${socket.index}_CR 0x${command.toString(16)}: not a command`);
    }
  }

  private open(socket: Socket, mode: number): void {
    const protocol = mode & SN_MR_PROTOCOL;
    let rx = 0, tx = 0;
    for (const s of this.sockets) {
      rx += s.rxSizeKb;
      tx += s.txSizeKb;
    }
    if (rx > TOTAL_KB || tx > TOTAL_KB) {
      this.violation(`OPEN with ${rx} KB of RX and ${tx} KB of TX buffers assigned: 16 KB of each in total (DS-W §4.2)`);
    }
    this.abortTransmission(socket);
    socket.rxRead = socket.rxWrite = socket.txRead = socket.txHanded = 0;
    socket.setReg16(0x24, 0);
    socket.setReg16(0x28, 0);
    socket.txStuck = false;
    socket.mode = mode;
    if (socket.index === 0 && this.corruptHeader?.sticky) this.corruptHeader = undefined;
    switch (protocol) {
      case PROTOCOL_MACRAW:
        if (socket.index !== 0) {
          this.violation(`MACRAW on S${socket.index}: only socket 0 runs MACRAW (DS-W §4.2 Sn_MR)`);
          socket.sr = SOCK_CLOSED;
          return;
        }
        socket.sr = SOCK_MACRAW;
        return;
      case PROTOCOL_TCP:
        socket.sr = SOCK_INIT;
        return;
      case PROTOCOL_UDP:
        socket.sr = SOCK_UDP;
        return;
      case PROTOCOL_IPRAW:
        socket.sr = SOCK_IPRAW;
        return;
      default:
        // Sn_MR protocol "closed" (or unknown): OPEN leaves the socket closed (p.46 table).
        socket.sr = SOCK_CLOSED;
    }
  }

  private close(socket: Socket): void {
    this.abortTransmission(socket);
    socket.sr = SOCK_CLOSED;
  }

  private abortTransmission(socket: Socket): void {
    const t = socket.transmitting;
    if (t) {
      this.cancel(t.event);
      this.stats.txFramesLost += 1 + socket.queued.length;
      if (socket.index === 0) this.heldCompletion = undefined;
    }
    socket.transmitting = undefined;
    socket.queued.length = 0;
  }

  // ---- Transmit ---------------------------------------------------------------------------------

  private send(socket: Socket, end: number): void {
    if (socket.sr !== SOCK_MACRAW) return;
    if (socket.transmitting) {
      socket.queued.push(end);
      return;
    }
    this.startTransmission(socket, end);
  }

  /** The bytes from TX_RD to `end` go out as one frame, padded to 60 bytes, with the FCS added. */
  private startTransmission(socket: Socket, end: number): void {
    const length = (end - socket.txRead) & 0xffff;
    const t: Transmission = { end };
    socket.transmitting = t;
    if (socket.txStuck || !this.linkUp) {
      // "TX never completes when the link drops" (esp-idf#6233; docs/w5500.md): no SEND_OK, TX_RD stays.
      socket.txStuck = true;
      this.stats.txFramesLost++;
      return;
    }
    if (length === 0) this.violation(`SEND on S${socket.index} with nothing written (TX_WR = TX_RD = 0x${end.toString(16)})`);
    if (length > MAX_FRAME) this.violation(`SEND of ${length} bytes on S${socket.index}: MACRAW sends one frame of at most ${MAX_FRAME} bytes and does not segment (DS-W §4.2 Sn_MSSR)`);
    const frame = new Uint8Array(Math.max(length, MIN_FRAME_BYTES));
    for (let i = 0; i < length; i++) frame[i] = this.txMemory[this.txIndex(socket, (socket.txRead + i) & 0xffff)]!;
    const duration = (PREAMBLE_SFD_BYTES + frame.length + FCS_BYTES) * this.wireMsPerByte;
    if (this.dropLinkMidTx !== undefined) {
      const downMs = this.dropLinkMidTx;
      this.dropLinkMidTx = undefined;
      this.at(duration / 2, () => {
        this.setLinkUp(false);
        this.clock.schedule(downMs, () => this.setLinkUp(true));
      });
    }
    t.event = this.at(duration + INTERFRAME_GAP_BYTES * this.wireMsPerByte, () => {
      t.event = undefined;
      const complete = () => this.completeTransmission(socket, t, frame, length);
      if (socket.index === 0 && (this.tear === 'Sn_TX_FSR' || this.tear === 'Sn_TX_RD')) this.heldCompletion = complete;
      else complete();
    });
  }

  private completeTransmission(socket: Socket, t: Transmission, frame: Uint8Array, length: number): void {
    if (socket.transmitting !== t) return;
    if (t.lost || !this.linkUp) {
      socket.txStuck = true;
      this.stats.txFramesLost++;
      return;
    }
    socket.transmitting = undefined;
    socket.txRead = t.end;
    if (length > 0 && length <= MAX_FRAME) {
      this.stats.txFramesSent++;
      if (this.recordTransmitted) this.transmitted.push(frame);
      this.port?.send(frame);
    } else {
      this.stats.txFramesLost++;
    }
    this.raise(socket, IR_SEND_OK);
    const next = socket.queued.shift();
    if (next !== undefined) this.startTransmission(socket, next);
  }

  // ---- Receive (cable side) ---------------------------------------------------------------------

  /** A frame (no FCS) arrives from the wire now. Shorter than 60 bytes: padded, as the sender's MAC would have. */
  receiveFrame(frame: Uint8Array): void {
    if (!this.linkUp) {
      this.stats.rxDroppedLinkDown++;
      return;
    }
    if (this.tear === 'Sn_RX_RSR' || this.tear === 'Sn_RX_WR') {
      this.heldFrames.push(Uint8Array.from(frame));
      return;
    }
    this.storeFrame(frame);
  }

  private storeFrame(frame: Uint8Array): void {
    const socket = this.sockets[0]!;
    if (socket.sr !== SOCK_MACRAW) {
      this.stats.rxDroppedClosed++;
      return;
    }
    let data = frame;
    if (data.length < MIN_FRAME_BYTES) {
      data = new Uint8Array(MIN_FRAME_BYTES);
      data.set(frame);
    }
    if (data.length > MAX_FRAME) {
      this.stats.rxDroppedTooLong++;
      return;
    }
    if (!this.passesFilter(socket.mode, data)) {
      this.stats.rxFilteredOut++;
      return;
    }
    const stored = data.length + 2;
    if (socket.rxSize - socket.received < stored) {
      this.stats.rxDroppedFull++;
      return;
    }
    let header = stored;
    if (this.corruptHeader) {
      header = this.corruptHeader.value & 0xffff;
      if (!this.corruptHeader.sticky) this.corruptHeader = undefined;
    }
    let p = socket.rxWrite;
    const put = (b: number) => {
      this.rxMemory[this.rxIndex(socket, p)] = b;
      p = (p + 1) & 0xffff;
    };
    put(header >> 8);
    put(header & 0xff);
    for (const b of data) put(b);
    socket.rxWrite = p;
    this.stats.rxFramesStored++;
    this.raise(socket, IR_RECV);
  }

  /**
   * MACRAW filtering by the Sn_MR taken at OPEN (DS-W §4.2 Sn_MR): MFEN "can only receive
   * broadcasting packet or packet sent to itself"; BCASTB, MMB and MIP6B block broadcast,
   * multicast and IPv6 frames.
   */
  private passesFilter(mode: number, data: Uint8Array): boolean {
    const broadcast = data.subarray(0, 6).every((b) => b === 0xff);
    const multicast = !broadcast && (data[0]! & 1) === 1;
    if (mode & SN_MR_BCASTB && broadcast) return false;
    if (mode & SN_MR_MMB && multicast) return false;
    if (mode & SN_MR_MIP6B && data[12] === 0x86 && data[13] === 0xdd) return false;
    if (mode & SN_MR_MFEN && !broadcast) {
      for (let i = 0; i < 6; i++) if (data[i] !== this.common[0x09 + i]) return false;
    }
    return true;
  }

  // ---- Interrupt pin (INTn, active low) ----------------------------------------------------------

  /** INTn is low: `true` means asserted. */
  get interruptAsserted(): boolean {
    return this.pinAsserted;
  }

  onInterruptChange(callback: (asserted: boolean) => void): () => void {
    this.interruptListeners.add(callback);
    return () => this.interruptListeners.delete(callback);
  }

  /** Set a Sn_IR bit, if Sn_IMR lets it be set at all (DS-W §4.2 Sn_IMR). */
  private raise(socket: Socket, bit: number): void {
    if (!(socket.regs[0x2c]! & bit)) return;
    socket.ir |= bit;
    this.updateInterrupt();
  }

  /** INTn is low while an enabled interrupt is set: IR & IMR, or SIR & SIMR (DS-W §4.1). */
  private updateInterrupt(): void {
    const level = (this.common[0x15]! & this.common[0x16]!) !== 0 || (this.sir & this.common[0x18]!) !== 0;
    if (!level) {
      this.edgeMissed = false;
      this.cancel(this.pinEvent);
      this.pinEvent = undefined;
      this.drivePin(false);
      return;
    }
    if (this.pinAsserted || this.pinEvent || this.edgeMissed) return;
    if (this.missEdge) {
      this.missEdge = false;
      this.edgeMissed = true;
      return;
    }
    // INTLEVEL: the pin falls IAWT after the interrupt (DS-W §4.1 INTLEVEL).
    const intlevel = (this.common[0x13]! << 8) | this.common[0x14]!;
    if (intlevel === 0) {
      this.drivePin(true);
      return;
    }
    this.pinEvent = this.at((intlevel + 1) * IAWT_UNIT_MS, () => {
      this.pinEvent = undefined;
      this.drivePin(true);
    });
  }

  private drivePin(asserted: boolean): void {
    if (asserted === this.pinAsserted) return;
    this.pinAsserted = asserted;
    for (const listener of [...this.interruptListeners]) listener(asserted);
  }

  // ---- Resets -----------------------------------------------------------------------------------

  /** MR.RST: every register back to its reset value; MR reads 0x80 until it is done. The PHY keeps its link. */
  private softReset(): void {
    this.resetUnseen = false;
    this.resetCommon();
    this.resetUntil = this.chipNow() + SOFT_RESET_MS;
    this.common[0] = 0;
  }

  /** RSTn pulsed by the host (the mock HAL's reset line): as a soft reset, and the PHY starts over. */
  hardReset(): void {
    this.resetChip(true);
  }

  /** A reset the host did not ask for (brown-out, a glitch on RSTn): the driver finds out by itself. */
  powerCycle(): void {
    this.resetChip(false);
  }

  private resetChip(byHost: boolean): void {
    this.resetCommon();
    this.resetUntil = -Infinity;
    this.readyAt = this.chipNow() + PLL_LOCK_MS;
    this.resetByHost = byHost;
    this.resetUnseen = !byHost;
    this.phyInReset = false;
    this.restartNegotiation(PLL_LOCK_MS);
  }

  // ---- PHY (DS-W §4.1 PHYCFGR) ------------------------------------------------------------------

  private get phycfgr(): number {
    const stored = this.common[0x2e]!;
    let value = (this.phyInReset ? 0 : PHY_RST) | (stored & (PHY_OPMD | PHY_OPMDC));
    if (this.linkUp) {
      const { fullDuplex, mbps } = this.negotiated;
      value |= PHY_LNK | (fullDuplex ? PHY_DPX : 0) | (mbps === 100 ? PHY_SPD : 0);
    }
    return value;
  }

  private writePhycfgr(value: number): void {
    this.common[0x2e] = (value & (PHY_OPMD | PHY_OPMDC)) | PHY_RST;
    if (!(value & PHY_RST)) {
      // RST = 0 resets the PHY; it stays in reset until RST is written 1 again.
      this.phyInReset = true;
      this.noteLink();
    } else if (this.phyInReset) {
      this.phyInReset = false;
      this.restartNegotiation(0);
    }
  }

  private get negotiated(): { fullDuplex: boolean; mbps: 10 | 100; powerDown: boolean } {
    return this.phyMode;
  }

  /** The mode a PHY reset takes: OPMDC when OPMD is set, else the pins (all capable); the LAN partner is all capable too. */
  private configuredPhyMode(): { fullDuplex: boolean; mbps: 10 | 100; powerDown: boolean } {
    const stored = this.common[0x2e]!;
    const mode = stored & PHY_OPMD ? (stored & PHY_OPMDC) >> 3 : 0b111;
    switch (mode) {
      case 0b000: return { fullDuplex: false, mbps: 10, powerDown: false };
      case 0b001: return { fullDuplex: true, mbps: 10, powerDown: false };
      case 0b010:
      case 0b100: return { fullDuplex: false, mbps: 100, powerDown: false };
      case 0b110: return { fullDuplex: false, mbps: 10, powerDown: true };
      default: return { fullDuplex: true, mbps: 100, powerDown: false };
    }
  }

  private get wireMsPerByte(): number {
    return byteTimeMs(this.negotiated.mbps);
  }

  private restartNegotiation(afterMs: number): void {
    this.phyMode = this.configuredPhyMode();
    this.linkAt = this.chipNow() + afterMs + this.autonegotiationMs;
    this.noteLink();
    this.cancel(this.linkEvent);
    this.linkEvent = this.at(this.linkAt - this.chipNow(), () => {
      this.linkEvent = undefined;
      this.noteLink();
    });
  }

  /** Link pulses present, PHY out of reset and powered, negotiation done. */
  get linkUp(): boolean {
    return this.cableUp && this.port !== undefined && !this.phyInReset && !this.negotiated.powerDown && this.chipNow() >= this.linkAt;
  }

  /** The link changed: a frame on the wire is lost and the transmitter sticks (esp-idf#6233). */
  private noteLink(): void {
    const up = this.linkUp;
    if (up === this.reportedLink) return;
    this.reportedLink = up;
    if (!up) {
      for (const socket of this.sockets) if (socket.transmitting) socket.transmitting.lost = true;
    }
  }

  // ---- Cable ------------------------------------------------------------------------------------

  /** Plug the cable into `lan`. With `rxWireTime`, a frame arrives once its last bit is in. */
  plugInto(lan: VirtualLan): void {
    this.port?.unplug();
    const cable = ++this.cables;
    this.port = lan.plug({
      label: this.label,
      deliver: (frame) => {
        if (!this.rxWireTime) return this.receiveFrame(frame);
        const now = this.chipNow();
        const start = Math.max(now, this.rxWireFreeAt);
        const end = start + (PREAMBLE_SFD_BYTES + Math.max(frame.length, MIN_FRAME_BYTES) + FCS_BYTES) * this.wireMsPerByte;
        this.rxWireFreeAt = end + INTERFRAME_GAP_BYTES * this.wireMsPerByte;
        const copy = Uint8Array.from(frame);
        this.at(end - now, () => {
          if (cable === this.cables) this.receiveFrame(copy);
        });
      },
    });
    this.restartNegotiation(0);
  }

  unplug(): void {
    this.cables++;
    this.port?.unplug();
    this.port = undefined;
    this.noteLink();
  }

  /** Link pulses on the cable (the far end powered and connected). */
  setLinkUp(up: boolean): void {
    if (up === this.cableUp) return;
    this.cableUp = up;
    if (up) this.restartNegotiation(0);
    else this.noteLink();
  }

  // ---- Faults -----------------------------------------------------------------------------------

  injectFault(fault: W5500Fault): void {
    switch (fault.kind) {
      case 'corrupt-header':
        this.corruptHeader = { value: fault.value, sticky: fault.sticky ?? false };
        return;
      case 'missed-edge':
        this.missEdge = true;
        return;
      case 'link-drop-mid-tx':
        this.dropLinkMidTx = fault.downMs ?? 50;
        return;
      case 'stuck-command':
        this.stuckNextCommand = true;
        return;
      case 'tear':
        this.tear = fault.register;
        return;
    }
  }

  /** The chip stops answering on SPI (MISO stuck low or floating high, MOSI ignored), or answers again. */
  setMiso(mode: MisoMode): void {
    this.miso = mode;
  }

  // ---- Inspection (tests) -----------------------------------------------------------------------

  /** A common register by name, big-endian for wider ones, without side effects. */
  peek(name: CommonRegisterName): number {
    const [offset, width] = COMMON[name];
    let value = 0;
    for (let i = 0; i < width; i++) value = value * 256 + this.peekCommonByte(offset + i);
    return value;
  }

  /** A socket register by name, without side effects (a tear is not triggered). */
  peekSocket(socket: number, name: SocketRegisterName): number {
    const [offset, width] = SOCKET[name];
    const s = this.sockets[socket]!;
    let value = 0;
    for (let i = 0; i < width; i++) value = value * 256 + this.peekSocketByte(s, offset + i);
    return value;
  }

  private peekCommonByte(offset: number): number {
    switch (offset) {
      case 0x00: return this.chipNow() < this.resetUntil ? MR_RST : this.common[0]!;
      case 0x17: return this.sir;
      case 0x2e: return this.phycfgr;
      case 0x39: return this.version;
    }
    return this.common[offset] ?? 0;
  }

  private peekSocketByte(s: Socket, offset: number): number {
    switch (offset) {
      case 0x01: return s.command;
      case 0x02: return s.ir;
      case 0x03: return s.sr;
      case 0x20: return this.freeSize(s) >> 8;
      case 0x21: return this.freeSize(s) & 0xff;
      case 0x22: return s.txRead >> 8;
      case 0x23: return s.txRead & 0xff;
      case 0x26: return s.received >> 8;
      case 0x27: return s.received & 0xff;
      case 0x2a: return s.rxWrite >> 8;
      case 0x2b: return s.rxWrite & 0xff;
    }
    return s.regs[offset] ?? 0;
  }

  /** The station address in SHAR, first octet first. */
  get macAddress(): Uint8Array {
    return this.common.slice(0x09, 0x0f);
  }

  /** Socket n's RX buffer, in its own pointer space (index = pointer mod size): tests may corrupt it. */
  rxBuffer(socket = 0): Uint8Array {
    const s = this.sockets[socket]!;
    const base = this.rxIndex(s, 0);
    return this.rxMemory.subarray(base, base + s.rxSize);
  }

  /** A transmission is stuck (the link went down under it): only CLOSE/OPEN or a reset clears it. */
  transmitterStuck(socket = 0): boolean {
    return this.sockets[socket]!.txStuck;
  }

  /** Frames arrived while a `tear` fault held them. */
  get heldFrameCount(): number {
    return this.heldFrames.length;
  }

  /** The chip answers on SPI (not resetting, PLL locked, MISO not stuck). */
  get ready(): boolean {
    return this.miso === 'normal' && this.chipNow() >= this.readyAt && this.chipNow() >= this.resetUntil;
  }

  private violation(message: string): void {
    if (!this.strict || this.resetUnseen) return;
    const text = `[${this.label} @${this.chipNow().toFixed(4)}ms] ${message}`;
    this.strictViolations.push(text);
    this.onStrictViolation?.(text);
  }
}
