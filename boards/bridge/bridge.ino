// spinet serial-to-SPI bridge, protocol version 2 (docs/bridge-protocol.md).
//
// The host sends COBS frames with a CRC-16 per <=64-byte chunk; this sketch checks each chunk
// before acting on it and clocks write bytes into SPI as chunks arrive; read bytes are CRC'd and
// COBS-encoded into the transmit ring as they are clocked (DATA frames of up to 112 bytes, the last
// carrying the answer's DONE when the host asks), so it never holds a whole Ethernet frame. Its own
// UART receive interrupt fills a ring whose size it advertises as the host's byte credit: no byte
// is lost at any baud rate. Runs of register writes come as PAIRS: one header, CS pulsed between.
//
// Throughput: the line, not the sketch, should be the limit. So work overlaps the line instead of
// following it: replies are COBS-encoded into a transmit ring that the loops drain a byte at a
// time while they clock SPI or check CRCs (txPump), each SPI byte's shift time is spent on the
// bookkeeping of its neighbour, and the CRC is table-driven (11 cycles a byte, not 17).
//
// Programs (version 2): the host may leave one small batch here (ARM), which the sketch runs by
// itself between commands — on an INT edge, and again while runs find work — through the same
// command interpreter, so a received Ethernet frame costs the host no round trip (section 3.2).
//
// Idle fill: the USB-serial chip forwards the board's bytes only when its buffer is full enough or
// on a timer (16U2: >96 bytes or every 4.096 ms; FT232R: 62 bytes or its 16 ms latency timer), so
// a reply's last bytes wait for the timer. After SET_FILL n the idle loop follows every burst of
// frames with up to n zeros — idle delimiters the host skips — which fill the chip's buffer and
// push the reply through; the zeros go only while the transmit ring is empty, so a frame waits at
// most for the zeros the UART already holds (one shifting out, one in UDR).
//
// Boards: ATmega328P (uno, nano, pro mini) and ATmega2560 (mega2560). Build: boards/bridge/Makefile.

#include <Arduino.h>
#include <avr/interrupt.h>
#include <avr/io.h>
#include <util/atomic.h>

#ifndef BRIDGE_BAUD
#define BRIDGE_BAUD 1000000UL
#endif
#ifndef BRIDGE_BOARD
#define BRIDGE_BOARD "uno"
#endif

// ---- options (the one place for tunables) --------------------------------------------------

// Chip select and the SD card's select come from the board definition (boards/<board>.json
// `pins.cs`, `pins.sdCs`; build.sh passes them): Ethernet shields put CS on D10 on the Uno and
// the Mega alike, and their SD card slot on D4. The SD card's CS is driven high (deselected) from
// boot, so a card in the slot never answers on MISO while the Ethernet chip does. -1: no SD slot.
#ifndef BRIDGE_CS_PIN
#define BRIDGE_CS_PIN 10
#endif
#ifndef BRIDGE_SD_CS_PIN
#define BRIDGE_SD_CS_PIN 4
#endif
static const uint8_t PIN_CS = BRIDGE_CS_PIN;
static const int8_t PIN_SD_CS = BRIDGE_SD_CS_PIN;
static const uint8_t PIN_RESET = 9;
static const uint8_t PIN_INT = 2;     // INT0 on the 328P, INT4 on the 2560 (the ISR below is wired to it)
#if defined(__AVR_ATmega2560__)
#define RING_SIZE 4096u               // receive ring: 4 KiB of 8 KiB RAM
#define UART_RX_VECTOR USART0_RX_vect
#define INT_VECTOR INT4_vect
#else
// 1.25 KiB of 2 KiB RAM: the window is 6.2 ms of line at 2 Mbaud, enough to cover a credit report's
// way back through a USB-serial chip and the USB frame of the data it releases (BENCHMARKS.md,
// bridge-sketch). What stays free is ≈150 bytes for the stack, whose deepest use measured is 38.
#define RING_SIZE 1280u
#define UART_RX_VECTOR USART_RX_vect
#define INT_VECTOR INT0_vect
#endif
static_assert(BRIDGE_CS_PIN != 2 && BRIDGE_CS_PIN != 9 && BRIDGE_CS_PIN != BRIDGE_SD_CS_PIN, "CS must be a pin of its own");
// Credit: less than the ring's capacity (RING_SIZE - 1), so the ISR never finds it full.
#define WINDOW (RING_SIZE - RING_SIZE / 32)
#define ACK_EVERY (WINDOW / 4)
#define MAX_PAYLOAD 64
// Read data goes back in DATA frames of up to 112 bytes (9 bytes of frame each): a whole one (121
// wire bytes) can be encoded into the transmit ring while the one before is still on the line.
// The ring is 256 bytes, so its 8-bit indices wrap by themselves.
#define DATA_PAYLOAD 112
#define TX_RING_SIZE 256
#define MAX_REPORTED_PINS 8
// ARM program buffer: the ENC28J60 receive program is 35 bytes; 64 leaves room for a W5500 one.
// The same on both MCUs (the Uno's RAM is the limit: ≈400 bytes stay free for the stack).
#define PROGRAM_MAX 64

// ---- protocol constants ----------------------------------------------------------------------

#define PROTOCOL_VERSION 2
enum { H_DATA = 0x01, H_HELLO = 0x02 };
enum { B_HELLO = 0x01, B_ACK = 0x02, B_NAK = 0x03, B_DATA = 0x04, B_DONE = 0x05, B_EVENT = 0x06 };
enum {
  C_SPI = 0x10,
  C_PIN_MODE = 0x20, C_DIGITAL_WRITE = 0x21, C_DIGITAL_READ = 0x22, C_ANALOG_READ = 0x23,
  C_PWM_WRITE = 0x24, C_PIN_REPORT = 0x25,
  C_CHIP_RESET = 0x30, C_PING = 0x31, C_SET_BAUD = 0x32, C_SET_FILL = 0x33, C_STATS = 0x34,
  C_ARM = 0x40, C_DISARM = 0x41, C_RUN = 0x42,
};
enum { S_OK = 0, S_EBADCMD = 1, S_EINVAL = 2, S_EBUSY = 3, S_EUNSUPPORTED = 4 };
enum { X_KEEP_CS = 0x01, X_DUPLEX = 0x02, X_IF = 0x04, X_LENGTH = 0x08, X_SHORT = 0x10, X_DELAY = 0x20, X_PAIRS = 0x40, X_LAST = 0x80 };
enum { L_BIG_ENDIAN = 0x01, L_EVEN = 0x02 };  // LENGTH opts; bits 2..7: the amount to subtract
enum { A_QUIET = 0x01, A_EXT = 0x02 };         // ARM options
enum { E_SAME = 0x01, E_DIFFER = 0x02, E_COPY = 0x04, E_SPAN = 0x08 };  // a program transaction's EXT byte
enum { EV_INT = 1, EV_PIN = 2 };
// SPI, GPIO, analog, PWM, pin reports, chip reset, SET_BAUD, INT events, programs, short headers,
// idle fill (SET_FILL), transaction delays (flag DELAY), command pairs (flag PAIRS), ended DATA
// frames (HELLO option), line statistics (STATS), program extensions (ARM option EXT)
#define CAPS 0xFFFF

// ---- CRC-16/MCRF4XX, table-driven ---------------------------------------------------------------

// crc' = (crc >> 8) ^ T[(crc ^ b) & 0xFF] with T(i) = i shifted through the reflected polynomial
// 0x8408 eight times: the same function as avr-libc's _crc_ccitt_update. The table's low bytes fill
// one 256-byte-aligned flash page and its high bytes the next, so an entry is two `lpm` from Z with
// Z's high byte fixed (11 cycles a byte; _crc_ccitt_update's bit-slicing takes 17).
static constexpr uint16_t crcStep(uint16_t c, uint8_t bits) {
  return bits == 0 ? c : crcStep((c & 1) ? (c >> 1) ^ 0x8408 : c >> 1, bits - 1);
}
#define CRC_LO(i) (uint8_t)crcStep(i, 8)
#define CRC_HI(i) (uint8_t)(crcStep(i, 8) >> 8)
#define CRC_4(f, i) f(i), f(i + 1), f(i + 2), f(i + 3)
#define CRC_16(f, i) CRC_4(f, i), CRC_4(f, i + 4), CRC_4(f, i + 8), CRC_4(f, i + 12)
#define CRC_64(f, i) CRC_16(f, i), CRC_16(f, i + 16), CRC_16(f, i + 32), CRC_16(f, i + 48)
#define CRC_256(f) CRC_64(f, 0), CRC_64(f, 64), CRC_64(f, 128), CRC_64(f, 192)
__attribute__((aligned(256))) static const uint8_t crcTable[512] PROGMEM = {CRC_256(CRC_LO), CRC_256(CRC_HI)};

__attribute__((always_inline)) static inline uint16_t crcUpdate(uint16_t crc, uint8_t b) {
  uint8_t lo, hi;
  asm("mov r30, %[index]\n\t"
      "ldi r31, hi8(%[table])\n\t"
      "lpm %[lo], Z\n\t"
      "inc r31\n\t"
      "lpm %[hi], Z"
      : [lo] "=&r"(lo), [hi] "=&r"(hi)
      : [index] "r"((uint8_t)((uint8_t)crc ^ b)), [table] "i"(crcTable)
      : "r30", "r31");
  return (uint16_t)hi << 8 | (uint8_t)(lo ^ (uint8_t)(crc >> 8));
}

// ---- UART: own receive ring, polled transmit -------------------------------------------------

// Named from the ISR's assembly below, so LTO must keep the symbols as they are.
extern "C" {
__attribute__((used, externally_visible)) uint8_t ring[RING_SIZE];
static uint16_t ringTail;            // main loop only (the ISR never looks: see the credit rule)

// Bytes the UART lost (data overrun: a third byte finished while two waited, ATmega328P datasheet
// §20.11.2 DORn) and bytes it received with a bad stop bit (FEn: noise, or a sender at another
// rate), counted by the ISR below; the main loop takes them from here.
__attribute__((used, externally_visible)) volatile uint8_t rxOverruns;
__attribute__((used, externally_visible)) volatile uint8_t rxFrameErrors;
}

// At 2 Mbaud a byte lands every 80 cycles, and the receive ISR is most of what a byte costs. So it
// owns registers no other code touches (the Makefile builds everything with -ffixed-r3 … r8, and
// build.sh checks the linked program for any other use): r6:r7 is the ring's next slot, r3 keeps
// SREG and r4:r5 keep Z while it runs, r8 carries the byte. No push or pop, no RAM for its state:
// 28 cycles with the response and the vector's jump (with everything in RAM and on the stack, 50;
// the C version, ≈85). It has no "ring full" check: the credit rule (WINDOW < RING_SIZE) keeps the
// ring from filling, and a host that breaks it gets CRC errors, not a crash. UCSR0A's error flags
// belong to the byte at the head of the FIFO, so they are read before UDR0; a set one costs a
// detour.
ISR(UART_RX_VECTOR, ISR_NAKED) {
  asm volatile(
      "in r3, __SREG__\n\t"
      "movw r4, r30\n\t"
      "lds r30, %[ucsra]\n\t"
      "andi r30, %[errors]\n\t"
      "brne 2f\n\t"
      "3: movw r30, r6\n\t"
      "lds r8, %[udr]\n\t"            // UDR0 read exactly once: each read pops the FIFO
      "st Z+, r8\n\t"
      "cpi r30, lo8(ring+%[size])\n\t"  // past the end: back to the start
      "brne 1f\n\t"
      "cpi r31, hi8(ring+%[size])\n\t"
      "brne 1f\n\t"
      "ldi r30, lo8(ring)\n\t"
      "ldi r31, hi8(ring)\n\t"
      "1: movw r6, r30\n\t"
      "movw r30, r4\n\t"
      "out __SREG__, r3\n\t"
      "reti\n\t"
      "2: sbrs r30, %[dor]\n\t"
      "rjmp 4f\n\t"
      "lds r31, rxOverruns\n\t"
      "inc r31\n\t"
      "sts rxOverruns, r31\n\t"
      "4: sbrs r30, %[fe]\n\t"
      "rjmp 3b\n\t"
      "lds r31, rxFrameErrors\n\t"
      "inc r31\n\t"
      "sts rxFrameErrors, r31\n\t"
      "rjmp 3b\n\t" ::[udr] "i"(_SFR_MEM_ADDR(UDR0)),
      [ucsra] "i"(_SFR_MEM_ADDR(UCSR0A)), [errors] "M"(_BV(DOR0) | _BV(FE0)), [dor] "I"(DOR0), [fe] "I"(FE0),
      [size] "i"(RING_SIZE));
}

// The ISR's next slot. One movw reads both halves at once: no interrupt can fall between them.
static inline uint8_t *ringIn() {
  uint8_t *in;
  asm volatile("movw %A0, r6" : "=r"(in));
  return in;
}

static inline uint16_t ringHead() { return (uint16_t)(ringIn() - ring); }

// Bytes in the ring (not a power of two in size: no mask).
static uint16_t ringUsed() {
  uint16_t head = ringHead();
  return head >= ringTail ? head - ringTail : head + RING_SIZE - ringTail;
}

static uint32_t currentBaud;

// UBRR for `baud` with U2X (the Arduino core's formula) and whether the rate it gives is within 2 %
// of `baud`. A receiver samples each bit in the middle of its 8 (U2X) samples, so the two ends
// together may differ by about ±2 % before bits at a frame's end slip (ATmega328P datasheet §20.8.3,
// Table 20-3: ±2.0 % recommended for 8 data bits at U2X). 1 and 2 Mbaud are exact at 16 MHz;
// 460800 would give 500000 (+8.5 %) and 1.5 M 2 M (+33 %): refused.
static uint16_t ubrrFor(uint32_t baud) { return (uint16_t)((F_CPU / 4 / baud - 1) / 2); }
static bool baudMakeable(uint32_t baud) {
  if (baud < 2400 || baud > F_CPU / 8) return false;
  uint32_t made = F_CPU / 8 / ((uint32_t)ubrrFor(baud) + 1);
  uint32_t off = made > baud ? made - baud : baud - made;
  return off * 50 <= baud;
}

// Line statistics (STATS): overruns and framing errors since boot, from the ISR's 8-bit counts. A
// byte the UART lost was sent by the host and counted against its credit: it is counted here as
// consumed, so the credit does not shrink by it (one per overrun: the ISR keeps the FIFO from
// overrunning twice in a row; a second byte lost in the same overrun leaks until the next HELLO).
static uint16_t consumed;            // bytes taken out of the ring (or lost), mod 2^16 (the credit report)
static uint8_t overrunsSeen, frameErrorsSeen;
static uint16_t overrunTotal, frameErrorTotal;

static void takeLineErrors() {
  uint8_t o = rxOverruns, f = rxFrameErrors;
  uint8_t lost = o - overrunsSeen;
  overrunsSeen = o;
  overrunTotal += lost;
  consumed += lost;
  frameErrorTotal += (uint8_t)(f - frameErrorsSeen);
  frameErrorsSeen = f;
}

static void uartBegin(uint32_t baud) {
  currentBaud = baud;
  // Off first: a rate change re-enables the transmitter cleanly (and avr8js only marks UDR empty
  // when TXEN goes from 0 to 1).
  UCSR0B = 0;
  // U2X formula of the Arduino core: 1 and 2 Mbaud are exact at 16 MHz.
  UCSR0A = _BV(U2X0);
  UBRR0 = ubrrFor(baud);
  UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);  // 8N1
  UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
}

// Transmit ring, pumped by the main loop. Why not a UDRE interrupt: at 2 Mbaud a received byte
// lands every 80 cycles, the receive ISR above takes 28 of them and decoding and clocking the byte
// out most of the rest; a UDRE ISR would add ≈30 more (entry, register saves, exit) per sent byte,
// so with both directions busy the sketch would fall behind the line, and the receive ISR could
// start late behind it. Instead every loop that
// runs longer than a character time (SPI clocking, CRC, COBS encode and decode, the idle loop)
// calls txPump() once per byte or block: one UDRE test and, when it is empty, one store — ≈6
// cycles, mostly hidden in the SPI's shift time. The cost: while the sketch blocks (analogRead,
// CHIP_RESET's delay) the line pauses; those commands are rare and short.
static uint8_t txRing[TX_RING_SIZE];
static uint8_t txHead;    // next free slot
static uint8_t txCommit;  // bytes before this may go out (a COBS code byte waits for its block)
static uint8_t txTail;    // next byte for the line

__attribute__((always_inline)) static inline void txPump() {
  uint8_t t = txTail;
  if ((UCSR0A & _BV(UDRE0)) && t != txCommit) {
    UDR0 = txRing[t];
    txTail = t + 1;
  }
}

static void txDrain() {
  while (txTail != txHead) txPump();
}

// Block for at least `us` microseconds (CHIP_RESET, a transaction's DELAY) while replies keep
// going out. Timer 0 ticks every 4 µs (the core's init(): fast PWM, clk/64) and wraps every
// 1.024 ms; its overflow interrupt (millis) is off, because at ≈100 cycles it held the UART's
// receive ISR off past the two-byte FIFO at 2 Mbaud. So the ticks are counted here, polled far more
// often than they wrap; the tick under way may be almost over, so one more makes `us` a floor.
__attribute__((noinline)) static void waitPumping(uint32_t us) {
  uint32_t ticks = (us + 3) / 4 + 1;
  uint8_t last = TCNT0;
  for (;;) {
    txPump();
    uint8_t now = TCNT0;
    uint8_t passed = now - last;
    last = now;
    if (passed >= ticks) return;
    ticks -= passed;
  }
}

// Idle fill (SET_FILL): zeros after each burst of frames, sent only from the idle loop (txIdle),
// never from the hot paths; each frame's end restarts the count (frameEnd).
static uint8_t fillCount;  // the host's setting; 0 = off (boot, HELLO)
static uint8_t fillLeft;   // zeros still to send since the last frame

static void txIdle() {
  txPump();
  if (fillLeft && txTail == txHead && (UCSR0A & _BV(UDRE0))) {
    UDR0 = 0;
    fillLeft--;
  }
}

// ---- SPI and the chip's lines ----------------------------------------------------------------

static volatile uint8_t *csPort;
static uint8_t csMask;
static bool selected;

static inline uint8_t spiByte(uint8_t out) {
  SPDR = out;
  while (!(SPSR & _BV(SPIF))) {}
  return SPDR;
}

static inline void chipSelect() {
  if (!selected) {
    *csPort &= ~csMask;
    selected = true;
  }
}

static inline void chipDeselect() {
  if (selected) {
    // ENC28J60 datasheet table 16-6: CS hold 210 ns after a MAC/MII read; 4 cycles = 250 ns.
    __builtin_avr_delay_cycles(4);
    *csPort |= csMask;
    selected = false;
  }
}

static volatile uint8_t *intPort;  // input register of PIN_INT (digitalRead costs ≈60 cycles)
static uint8_t intMask;
static inline uint8_t intAsserted() { return (*intPort & intMask) ? 0 : 1; }  // active low

// INT edges. The external interrupt only sets bit 0 of GPIOR0 (sbi leaves SREG alone: no saves, 13
// cycles with entry and vector jump; attachInterrupt's ISR took ≈90, enough with the UART's to
// overrun its FIFO at 2 Mbaud). The main loop turns the flag into the edge count: one edge if the
// level moved since it last looked, two (a pulse) if it did not. Several pulses between two looks
// count as one, as the host only needs to know that something happened.
ISR(INT_VECTOR, ISR_NAKED) {
  asm volatile("sbi %[gpior], 0\n\treti" ::[gpior] "I"(_SFR_IO_ADDR(GPIOR0)));
}
static uint8_t intEdges;
static uint8_t edgeLevel;  // the level when edges were last counted
#define INT_FLAGGED() (GPIOR0 & 1)

static uint8_t countEdges() {
  if (INT_FLAGGED()) {
    GPIOR0 &= ~1;  // cleared before the level is read: an edge in between flags again
    uint8_t level = intAsserted();
    intEdges += level != edgeLevel ? 1 : 2;
    edgeLevel = level;
  }
  return intEdges;
}

static bool reservedPin(uint8_t pin) {
  // SS stays an output whatever CS is: as an input pulled low it would drop SPI to slave mode.
  return pin == 0 || pin == 1 || pin == PIN_CS || pin == PIN_INT || pin == PIN_RESET ||
         pin == MOSI || pin == MISO || pin == SCK || pin == SS || (PIN_SD_CS >= 0 && pin == (uint8_t)PIN_SD_CS);
}

// ---- frames out ------------------------------------------------------------------------------

// Read data is encoded into the transmit ring as it is clocked (a DATA frame stays open across
// the transactions of a batch, up to DATA_PAYLOAD bytes), so the line starts on a reply while SPI
// is still reading it (each COBS block goes as soon as it is closed). `tx` keeps the batch's first 64 read bytes for IF and LENGTH to refer to; replies,
// acknowledgements and events are built in `ctl` and encoded whole (sendFrame), which first ends
// an open DATA frame: frames never interleave in the ring.
static uint8_t tx[MAX_PAYLOAD];          // read bytes 0..63 of the batch in progress
static uint8_t txLen;                    // payload bytes in the open DATA frame
static bool dataOpen;                    // a DATA frame is being encoded (dataBegin .. dataEnd)
#define CTL_PAYLOAD 32                   // HELLO is the largest control payload (15 + name)
static uint8_t ctl[5 + CTL_PAYLOAD];
static uint8_t expectedSeq;
static uint16_t reportedConsumed;
static uint8_t reportedSeq;

// CRC and COBS-encode frame bodies, with the CRC, into the transmit ring. Each COBS block's code
// byte (distance to the next zero) gets a slot first and is filled in when the block ends; only
// then may the pump send the block (txCommit). Bodies are <= 254 bytes, so no block reaches the
// 0xFF code. The encoder's state is global while a DATA frame is open; the loops load it into
// registers for a run of bytes.
static uint8_t txCode, txCodeAt;  // the open block's code (so far) and its slot
static uint8_t encHead;           // next free slot after the frame being encoded
static uint16_t encCrc;

__attribute__((always_inline)) static inline void encodeByte(uint8_t &head, uint8_t &code, uint8_t &codeAt, uint8_t b) {
  if (b) {
    txRing[head++] = b;
    code++;
  } else {
    txRing[codeAt] = code;
    codeAt = head++;
    code = 1;
    txCommit = codeAt;
  }
}

// Room for a whole frame of `n` body bytes (body, CRC, code, 0x00), then its first code slot.
static void frameBegin(uint8_t n) {
  while ((uint8_t)(txTail - txHead - 1) < (uint8_t)(n + 4)) txPump();
  fillLeft = 0;  // no idle fill ahead of a frame that is under way
  txCodeAt = txHead;
  encHead = txHead + 1;
  txCode = 1;
  encCrc = 0xFFFF;
}

static void frameBytes(const uint8_t *body, uint8_t n) {
  uint8_t head = encHead, code = txCode, codeAt = txCodeAt;
  uint16_t crc = encCrc;
  for (uint8_t i = 0; i < n; i++) {
    uint8_t b = body[i];
    crc = crcUpdate(crc, b);
    encodeByte(head, code, codeAt, b);
    txPump();
  }
  encHead = head;
  txCode = code;
  txCodeAt = codeAt;
  encCrc = crc;
}

// `ended`: the CRC goes complemented — an ended DATA frame, whose payload ends in the DONE.
static void frameEnd(bool ended = false) {
  uint8_t head = encHead, code = txCode, codeAt = txCodeAt;
  uint16_t crc = ended ? ~encCrc : encCrc;
  encodeByte(head, code, codeAt, (uint8_t)crc);
  encodeByte(head, code, codeAt, (uint8_t)(crc >> 8));
  txRing[codeAt] = code;
  txRing[head++] = 0;
  txHead = head;
  txCommit = head;
  fillLeft = fillCount;
}

static void fillHeader(uint8_t *h, uint8_t type, uint8_t id) {
  h[0] = type | (intAsserted() << 7);
  h[1] = id;
  h[2] = expectedSeq;
  h[3] = (uint8_t)consumed;
  h[4] = (uint8_t)(consumed >> 8);
  reportedConsumed = consumed;
  reportedSeq = expectedSeq;
}

static uint8_t dataId;
static uint16_t readCount;

static void dataEnd() {
  frameEnd();
  dataOpen = false;
  txLen = 0;
}

static void sendFrame(uint8_t *body, uint8_t type, uint8_t id, uint8_t payloadLen) {
  if (dataOpen) dataEnd();
  fillHeader(body, type, id);
  frameBegin(5 + payloadLen);
  frameBytes(body, 5 + payloadLen);
  frameEnd();
}

static void dataBegin() {
  uint8_t h[5];
  fillHeader(h, B_DATA, dataId);
  frameBegin(5 + DATA_PAYLOAD + 3);  // room for a DONE to end it
  frameBytes(h, 5);
  dataOpen = true;
  txLen = 0;
}

// A DATA frame for the next read byte: a full one ends only now, so the batch's last may still
// carry its DONE.
static inline void dataRoom() {
  if (dataOpen && txLen == DATA_PAYLOAD) dataEnd();
  if (!dataOpen) dataBegin();
}

// One read byte (DUPLEX writes; spiRead has its own loop).
__attribute__((always_inline)) static inline void pushRead(uint8_t b) {
  dataRoom();
  if (readCount < MAX_PAYLOAD) tx[readCount] = b;
  readCount++;
  frameBytes(&b, 1);
  txLen++;
}

// Clock `n` bytes out with MOSI = 0x00 into DATA frames, encoding each byte while the next shifts.
static void spiRead(uint16_t n) {
  while (n) {
    dataRoom();
    uint8_t room = DATA_PAYLOAD - txLen;
    uint8_t chunk = n < room ? (uint8_t)n : room;
    txLen += chunk;
    n -= chunk;
    // Bytes 0..63 of the batch are also kept in tx (IF, LENGTH): how many of this chunk, and where.
    uint16_t count = readCount;
    uint8_t keep = count < MAX_PAYLOAD ? (uint8_t)(MAX_PAYLOAD - count) : 0;
    uint8_t *store = tx + (keep ? count : 0);
    readCount = count + chunk;
    uint8_t head = encHead, code = txCode, codeAt = txCodeAt;
    uint16_t crc = encCrc;
    SPDR = 0;
    for (;;) {
      while (!(SPSR & _BV(SPIF))) {}
      uint8_t b = SPDR;
      if (--chunk) SPDR = 0;  // the next byte shifts while this one is encoded
      if (keep) {
        *store++ = b;
        keep--;
      }
      crc = crcUpdate(crc, b);
      encodeByte(head, code, codeAt, b);
      txPump();
      if (!chunk) break;
    }
    encHead = head;
    txCode = code;
    txCodeAt = codeAt;
    encCrc = crc;
  }
}

// Clock `n` (>= 1) verified write bytes into SPI; the next byte is fetched while one shifts.
static void spiWrite(const uint8_t *p, uint8_t n) {
  SPDR = *p++;
  while (--n) {
    uint8_t next = *p++;
    txPump();
    while (!(SPSR & _BV(SPIF))) {}
    SPDR = next;  // reading SPSR with SPIF set, then this access, clears SPIF
  }
  while (!(SPSR & _BV(SPIF))) {}
}

static void sendDone(uint8_t id, uint8_t status, uint16_t value) {
  ctl[5] = status;
  ctl[6] = (uint8_t)value;
  ctl[7] = (uint8_t)(value >> 8);
  sendFrame(ctl, B_DONE, id, 3);
}

static bool endFrames;  // the host's HELLO asked for ended DATA frames (caps bit 13)

// A batch's answer is complete: its DONE ends the open DATA frame if the host takes that (3 bytes
// instead of a 12-byte frame), else follows it.
static void endAnswer(uint8_t status) {
  if (endFrames && dataOpen) {
    uint8_t done[3] = {status, (uint8_t)readCount, (uint8_t)(readCount >> 8)};
    frameBytes(done, 3);
    frameEnd(true);
    dataOpen = false;
    txLen = 0;
  } else {
    if (dataOpen) dataEnd();
    sendDone(dataId, status, readCount);
  }
}

static uint8_t sessions;

// resetCause: MCUSR as it was at reset. Both stock bootloaders clear MCUSR before the sketch runs
// (optiboot 4.4, the Uno's and Nano's: `MCUSR = 0` first thing; the Mega's stk500v2 likewise), and
// optiboot from version 6 on hands the value over in r2 instead. So the sketch takes MCUSR and r2
// before the C runtime runs (.init3: after the stack is set, before anything can use r2), and
// reports MCUSR if a bootloader left it, else r2 if it holds an MCUSR value, else 0 (unknown).
// The code is built with r2 reserved (-ffixed-r2) and sets it to 0xFF, no MCUSR value, so after a
// warm reset through a bootloader that passes nothing, r2 does not pass off a stale value as one.
// A power-on reset (whose flag a bootloader may have cleared) is told apart by a marker in RAM
// that no reset clears but losing power does. The same code points the receive ISR's register
// (r6:r7, above) at the ring, before anything can enable the interrupt.
extern "C" {
__attribute__((used, externally_visible, section(".noinit"))) uint8_t bootMcusr;
__attribute__((used, externally_visible, section(".noinit"))) uint8_t bootR2;
__attribute__((used, externally_visible, section(".noinit"))) uint16_t warmMarker;
}
__attribute__((naked, used, section(".init3"))) static void captureResetFlags() {
  asm volatile(
      "sts bootR2, r2\n\t"
      "in r24, %[mcusr]\n\t"
      "sts bootMcusr, r24\n\t"
      "out %[mcusr], __zero_reg__\n\t"
      "ldi r24, 0xFF\n\t"
      "mov r2, r24\n\t"
      "ldi r24, lo8(ring)\n\t"  // the receive ISR's next slot (r6:r7): the ring's start
      "mov r6, r24\n\t"
      "ldi r24, hi8(ring)\n\t"
      "mov r7, r24\n\t" ::[mcusr] "I"(_SFR_IO_ADDR(MCUSR))
      : "r24");
}
#define MCUSR_FLAGS (_BV(PORF) | _BV(EXTRF) | _BV(BORF) | _BV(WDRF))
#define WARM 0x5A17
static uint8_t resetCause;

static void takeResetCause() {
  uint8_t cause = bootMcusr & MCUSR_FLAGS;
  if (!cause && bootR2 && !(bootR2 & ~MCUSR_FLAGS)) cause = bootR2;
  if (warmMarker != WARM) cause |= _BV(PORF);  // RAM lost its content: the power was off
  warmMarker = WARM;
  resetCause = cause;
}

static_assert(15 + sizeof(BRIDGE_BOARD) - 1 <= CTL_PAYLOAD, "HELLO must fit the control frame buffer");

static void sendHello() {
  static const char name[] = BRIDGE_BOARD;
  uint8_t *p = ctl + 5;
  *p++ = PROTOCOL_VERSION;
  *p++ = (uint8_t)CAPS;
  *p++ = (uint8_t)(CAPS >> 8);
  *p++ = (uint8_t)WINDOW;
  *p++ = (uint8_t)(WINDOW >> 8);
  *p++ = MAX_PAYLOAD;
  *p++ = sessions;
  *p++ = resetCause;
  *p++ = NUM_DIGITAL_PINS;
  *p++ = PIN_CS;
  *p++ = PIN_INT;
  *p++ = PIN_RESET;
  *p++ = NUM_ANALOG_INPUTS;
  *p++ = A0;
  *p++ = PROGRAM_MAX;
  for (uint8_t i = 0; i < sizeof(name) - 1; i++) *p++ = name[i];
  sendFrame(ctl, B_HELLO, 0, (uint8_t)(p - (ctl + 5)));
}

// ---- the armed program (section 3.2) ---------------------------------------------------------

static uint8_t program[PROGRAM_MAX];
static uint8_t programLen;   // bytes of it received so far: its length once armed
static uint8_t programId;    // the ARM id: every run is answered under it
static bool armed;
static bool quiet;           // ARM option QUIET: no INT events while armed
static bool programExt;      // ARM option EXT: every transaction has an EXT byte after its flags
static bool extRun;          // a run of such a program is in progress (startTransaction reads EXT)
static bool runDue;          // just armed, the last run found work, or a batch left INT asserted
static uint8_t runEdges;     // intEdges when the last run started: an edge since then is a trigger

static void disarm() {
  armed = false;
  quiet = false;
}

// ---- events ----------------------------------------------------------------------------------

static uint8_t eventCounter;
static uint8_t reportedIntLevel;
static uint8_t reportedIntEdges;
static uint8_t reportPins[MAX_REPORTED_PINS];
static uint8_t reportValues[MAX_REPORTED_PINS];
static uint8_t reportCount;

static void sendEvent(uint8_t kind, uint8_t a, uint8_t b) {
  ctl[5] = kind;
  ctl[6] = a;
  ctl[7] = b;
  sendFrame(ctl, B_EVENT, eventCounter++, 3);
}

static void pollEvents() {
  uint8_t edges = countEdges();
  uint8_t level = intAsserted();
  if (edges != reportedIntEdges || level != reportedIntLevel) {
    reportedIntEdges = edges;
    reportedIntLevel = level;
    if (!quiet) sendEvent(EV_INT, level, edges);  // quiet: the program's runs tell the host
  }
  for (uint8_t i = 0; i < reportCount; i++) {
    uint8_t v = digitalRead(reportPins[i]) == HIGH ? 1 : 0;
    if (v != reportValues[i]) {
      reportValues[i] = v;
      sendEvent(EV_PIN, reportPins[i], v);
    }
  }
}

// ---- command stream --------------------------------------------------------------------------

enum { ST_OP, ST_ARGS, ST_XHDR, ST_WRITE, ST_SKIP, ST_PROGRAM, ST_STALLED };
static uint8_t state = ST_OP;
static uint8_t op;
static uint8_t args[18];        // a command's arguments, or a transaction header (at most 18 bytes with EXT)
static uint8_t argCount, argNeed;
static uint8_t xferFlags;
static uint16_t writeLeft, readLeft;
// The batch in progress (an SPI command or a program run):
static bool skipping;           // an IF found its byte zero: the rest of the batch is skipped
static uint8_t batchStatus;     // its DONE status: EINVAL once a reference was not available

// A compare chain, not a lookup table: gcc would put the table (51 bytes) in RAM.
__attribute__((optimize("no-tree-switch-conversion"))) static uint8_t argsFor(uint8_t command) {
  switch (command) {
    case C_SPI: case C_PING: case C_DISARM: case C_RUN: return 1;
    case C_DIGITAL_READ: case C_ANALOG_READ: case C_SET_FILL: case C_STATS: return 2;
    case C_PIN_MODE: case C_DIGITAL_WRITE: case C_PWM_WRITE: case C_PIN_REPORT: case C_CHIP_RESET:
    case C_ARM:
      return 3;
    case C_SET_BAUD: return 5;
    default: return 0;
  }
}

static uint8_t spiEndTick;       // timer 0 (4 µs ticks) when the last transaction ended

static void startBatch(uint8_t id) {
  dataId = id;
  readCount = 0;
  txLen = 0;
  skipping = false;
  batchStatus = S_OK;
  state = ST_XHDR;
  argCount = 0;
}

static void endTransaction() {
  spiRead(readLeft);
  readLeft = 0;
  if (!(xferFlags & X_KEEP_CS)) chipDeselect();
  spiEndTick = TCNT0;  // for a DELAY in the next transaction
  if (xferFlags & X_LAST) {
    endAnswer(batchStatus);
    // A level the host did not clear, or a packet that came while INT was already low, gives no
    // edge: let the program look (a run overrides this when it ends).
    if (intAsserted()) runDue = true;
    state = ST_OP;
  } else {
    state = ST_XHDR;
    argCount = 0;
  }
}

static uint8_t extBytes(uint8_t ext) {
  return (ext & E_SAME ? 2 : 0) + (ext & E_DIFFER ? 2 : 0) + (ext & E_COPY ? 2 : 0) + (ext & E_SPAN ? 1 : 0);
}

__attribute__((always_inline)) static inline uint8_t headerBytes(uint8_t flags) {
  uint8_t n = (flags & X_SHORT) ? 2 : 5;
  if (flags & X_IF) n += 1;
  if (flags & X_LENGTH) n += 2;
  if (flags & X_DELAY) n += 2;
  return n;
}

// IF and LENGTH refer to the batch's read bytes by number: one is available iff it has been read
// and no more than 64 have (tx keeps bytes 0..63; the rule predates that, when they shared the
// DATA buffer, and stays so that every board answers alike). A reference to one that is not makes
// the batch's DONE say EINVAL.
static bool referable(uint16_t at) {
  if (readCount <= MAX_PAYLOAD && at < readCount) return true;
  batchStatus = S_EINVAL;
  return false;
}

// EXT operands refer to the batch's first 64 read bytes once read: tx keeps them whatever is read
// after (unlike IF and LENGTH's rule above).
static bool kept(uint8_t at) {
  if (at < MAX_PAYLOAD - 1 && (uint16_t)at + 1 < readCount) return true;
  batchStatus = S_EINVAL;
  return false;
}

static uint16_t value16(uint8_t at, uint8_t opts) {
  return (opts & L_BIG_ENDIAN) ? (uint16_t)tx[at] << 8 | tx[at + 1] : (uint16_t)tx[at + 1] << 8 | tx[at];
}

// LENGTH: the 16-bit value at read bytes `at`, at+1 (minus the one at `spanAt` with EXT's SPAN,
// mod 2^16), minus opts >> 2 (floored at 0), rounded up to even if asked, capped at `cap` (the
// transaction's rlen).
static uint16_t computedLength(uint8_t at, uint8_t opts, uint16_t cap, uint8_t spanAt) {
  if (!referable((uint16_t)at + 1)) return 0;
  uint16_t n = value16(at, opts);
  if (spanAt != 0xFF) {
    if (!kept(spanAt)) return 0;
    n -= value16(spanAt, opts);
  }
  uint8_t minus = opts >> 2;
  n = n > minus ? n - minus : 0;
  if ((opts & L_EVEN) && (n & 1)) n = n < cap ? n + 1 : cap;  // 0xFFFF + 1 must not wrap to 0
  return n < cap ? n : cap;
}

static void skipRest() {
  skipping = true;
  chipDeselect();
}

static uint8_t copyPos, copyFrom;  // EXT's COPY for the transaction in progress (copyPos 0xFF: none)

// A whole header: flags [EXT, in a run of a program armed with it] (SHORT ? lens : wlen:u16
// rlen:u16) [IF at] [LENGTH at opts] [EXT's operands] [DELAY us:u16]. Once an IF (or an EXT test)
// has failed, the rest of the batch only consumes its bytes: nothing clocked, CS released, no delay.
static void startTransaction() {
  uint8_t flags = args[0];
  const uint8_t *p = args + 1;
  uint8_t ext = extRun ? *p++ : 0;
  xferFlags = flags;
  if (flags & X_SHORT) {
    uint8_t lens = *p++;
    writeLeft = lens & 0x0F;
    readLeft = __builtin_avr_swap(lens) & 0x0F;  // lens >> 4 (gcc would loop a 16-bit shift)
  } else {
    writeLeft = p[0] | (uint16_t)p[1] << 8;
    readLeft = p[2] | (uint16_t)p[3] << 8;
    p += 4;
  }
  if (flags & X_IF) {
    uint8_t at = *p++;
    if (!skipping && (!referable(at) || tx[at] == 0)) skipRest();
  }
  const uint8_t *length = p;
  if (flags & X_LENGTH) p += 2;
  // EXT: SAME a b, DIFFER a b (16-bit values equal / not), COPY pos a, SPAN b.
  copyPos = 0xFF;
  uint8_t spanAt = 0xFF;
  if (ext) {
    for (uint8_t test = E_SAME; test <= E_DIFFER; test <<= 1) {
      if (!(ext & test)) continue;
      uint8_t a = *p++, b = *p++;
      if (skipping) continue;
      if (!kept(a) || !kept(b)) {
        skipRest();
        continue;
      }
      bool same = tx[a] == tx[b] && tx[a + 1] == tx[b + 1];
      if (same != (test == E_SAME)) skipRest();
    }
    if (ext & E_COPY) {
      copyPos = *p++;
      copyFrom = *p++;
      if (!skipping && !kept(copyFrom)) skipRest();
    }
    if (ext & E_SPAN) spanAt = *p++;
  }
  if ((flags & X_LENGTH) && !skipping) readLeft = computedLength(length[0], length[1], readLeft, spanAt);
  // DELAY: a floor between the SPI events before this transaction and its first (the previous
  // frame's wire time before the next TXRST), without a round trip; CS stays as it is.
  if ((flags & X_DELAY) && !skipping) {
    // The floor counts from the previous transaction's end: the time spent since (parsing this
    // header, say) is part of it. Timer 0 ticks every 4 µs; `spent` ticks mean at least spent-1
    // ticks have passed, and after a wrap (over 1 ms) it only under-counts.
    uint16_t us = args[argNeed - 2] | (uint16_t)args[argNeed - 1] << 8;
    uint8_t spent = (uint8_t)(TCNT0 - spiEndTick);
    uint16_t credit = spent ? (uint16_t)(spent - 1) * 4 : 0;
    if (us > credit) waitPumping(us - credit);
  }
  if (skipping) {
    readLeft = 0;
    state = ST_SKIP;
  } else {
    chipSelect();
    state = ST_WRITE;
  }
  if (writeLeft == 0) endTransaction();
}

// The per-byte steps of a transaction, shared by the command stream (commandByte, inlined into the
// frame loop: one call site keeps it there) and program runs.
__attribute__((always_inline)) static inline void headerByte(uint8_t b) {
  args[argCount++] = b;
  if (argCount == 1) argNeed = headerBytes(b);
  else if (argCount == argNeed) startTransaction();
}

__attribute__((always_inline)) static inline void writeByte(uint8_t b) {
  uint8_t in = spiByte(b);
  if (xferFlags & X_DUPLEX) pushRead(in);
  if (--writeLeft == 0) {
    endTransaction();
  } else if ((xferFlags & X_PAIRS) && !(writeLeft & 1)) {
    // PAIRS: every two bytes are one SPI command in a CS frame of its own.
    chipDeselect();
    chipSelect();
  }
}

__attribute__((always_inline)) static inline void skipByte() {
  if (--writeLeft == 0) endTransaction();
}

// One run of the armed program: a batch under the program's id, its bytes fed through the steps
// the host's SPI commands take. The caller makes sure no command is in progress and CS is
// released (section 3.2).
static void runProgram() {
  runEdges = countEdges();
  startBatch(programId);
  extRun = programExt;
  // The same steps as the command stream takes, but a whole header or write at a time: the
  // program is all in RAM (a run of small transactions: 33 → 15 µs each).
  uint8_t i = 0;
  while (i < programLen && state != ST_OP) {
    // Small transactions clock little SPI: keep the line busy between them (the reply before
    // this run, or this run's first DATA frame, is still going out).
    txPump();
    uint8_t left = programLen - i;
    if (state == ST_XHDR) {
      uint8_t need = headerBytes(program[i]);
      if (extRun) need += left < 2 ? left : 1 + extBytes(program[i + 1]);
      if (need > left || need > sizeof(args)) break;  // cut short: ends below as a program without LAST
      for (uint8_t k = 0; k < need; k++) args[k] = program[i + k];
      argCount = argNeed = need;
      i += need;
      startTransaction();
      // COPY: the write bytes the run clocks next are read bytes it kept.
      if (copyPos != 0xFF && state == ST_WRITE && copyPos + 1 < writeLeft && copyPos + 2 <= left - need) {
        program[i + copyPos] = tx[copyFrom];
        program[i + copyPos + 1] = tx[copyFrom + 1];
      }
    } else {
      uint8_t n = writeLeft < left ? (uint8_t)writeLeft : left;
      if (state == ST_WRITE && (xferFlags & (X_DUPLEX | X_PAIRS))) {
        writeByte(program[i++]);  // per byte: reads to push, or CS to pulse
      } else {
        if (state == ST_WRITE) spiWrite(program + i, n);
        i += n;
        writeLeft -= n;
        if (writeLeft == 0) endTransaction();
      }
    }
  }
  if (state != ST_OP) {
    // No LAST: end as if it had come, mid-transaction or not.
    chipDeselect();
    batchStatus = S_EINVAL;
    endAnswer(batchStatus);
    state = ST_OP;
  }
  extRun = false;
  chipDeselect();  // a KEEP_CS on the last transaction must not hand CS to the host's next command
  // Again at once, unless an IF cut this run short (nothing to do) or the program is faulty.
  runDue = !skipping && batchStatus == S_OK;
}

static void finishArm() {
  uint8_t id = args[0], options = args[1], len = args[2];
  uint8_t status = S_EINVAL;
  if (len <= PROGRAM_MAX) {
    programId = id;
    armed = true;
    quiet = options & A_QUIET;
    programExt = options & A_EXT;
    runDue = true;  // packets may already wait
    status = S_OK;
  }
  sendDone(id, status, len);
  state = ST_OP;
}

static uint8_t pinCommand(uint8_t pin, uint16_t *value) {
  if (pin >= NUM_DIGITAL_PINS) return S_EINVAL;
  if (reservedPin(pin)) return S_EBUSY;
  uint8_t a = args[2];
  switch (op) {
    case C_PIN_MODE:
      if (a > 2) return S_EINVAL;
      if (a == 1) {
        pinMode(pin, OUTPUT);
      } else {
        pinMode(pin, a == 2 ? INPUT_PULLUP : INPUT);
      }
      return S_OK;
    case C_DIGITAL_WRITE: digitalWrite(pin, a ? HIGH : LOW); return S_OK;
    case C_DIGITAL_READ: *value = digitalRead(pin) == HIGH ? 1 : 0; return S_OK;
    case C_PWM_WRITE: analogWrite(pin, a); return S_OK;
    case C_PIN_REPORT: {
      uint8_t i = 0;
      while (i < reportCount && reportPins[i] != pin) i++;
      if (a) {
        if (i == reportCount) {
          if (reportCount == MAX_REPORTED_PINS) return S_EINVAL;
          reportCount++;
        }
        reportPins[i] = pin;
        reportValues[i] = digitalRead(pin) == HIGH ? 1 : 0;
      } else if (i < reportCount) {
        reportPins[i] = reportPins[reportCount - 1];
        reportValues[i] = reportValues[reportCount - 1];
        reportCount--;
      }
      return S_OK;
    }
  }
  return S_EINVAL;
}

static void runCommand() {
  uint8_t id = args[0];
  uint16_t value = 0;
  uint8_t status = S_OK;
  switch (op) {
    case C_SPI:
      startBatch(id);
      return;
    case C_ARM:
      disarm();  // the old program is being overwritten
      programLen = 0;
      if (args[2] == 0) finishArm();
      else state = ST_PROGRAM;
      return;
    case C_DISARM:
      disarm();
      break;
    case C_RUN:
      // Never inside a KEEP_CS transaction the host holds open across requests.
      if (armed && !selected) {
        runProgram();
        value = 1;
      }
      break;
    case C_ANALOG_READ:
      if (args[1] >= NUM_ANALOG_INPUTS) status = S_EINVAL;
      else value = analogRead(args[1]);
      break;
    case C_CHIP_RESET: {
      digitalWrite(PIN_RESET, LOW);
      uint16_t ms = args[1] | (uint16_t)args[2] << 8;
      waitPumping(ms * 1000UL);
      digitalWrite(PIN_RESET, HIGH);
      break;
    }
    case C_PING:
      value = WINDOW - ringUsed();
      break;
    case C_SET_BAUD: {
      uint32_t baud = args[1] | (uint32_t)args[2] << 8 | (uint32_t)args[3] << 16 | (uint32_t)args[4] << 24;
      if (!baudMakeable(baud)) {
        status = S_EINVAL;
        break;
      }
      sendDone(id, S_OK, 0);
      txDrain();
      // Let the DONE leave the shift register at the old rate (two characters' time).
      delayMicroseconds((uint16_t)(20000000UL / currentBaud) + 2);
      uartBegin(baud);
      fillLeft = 0;  // the host may not listen at the new rate yet
      state = ST_OP;
      return;
    }
    case C_SET_FILL:
      fillCount = args[1];
      value = fillCount;
      break;
    case C_STATS:
      takeLineErrors();
      if (args[1] == 0) value = overrunTotal;
      else if (args[1] == 1) value = frameErrorTotal;
      else status = S_EINVAL;
      break;
    default:
      status = pinCommand(args[1], &value);
      break;
  }
  sendDone(id, status, value);
  state = ST_OP;
}

static void commandByte(uint8_t b) {
  switch (state) {
    case ST_OP:
      op = b;
      argNeed = argsFor(op);
      argCount = 0;
      if (argNeed == 0) {
        sendDone(0xFF, S_EBADCMD, op);  // the stream is out of step: wait for HELLO
        state = ST_STALLED;
      } else {
        state = ST_ARGS;
      }
      return;
    case ST_ARGS:
      args[argCount++] = b;
      if (argCount == argNeed) runCommand();
      return;
    case ST_XHDR: headerByte(b); return;
    case ST_WRITE: writeByte(b); return;
    case ST_SKIP: skipByte(); return;
    case ST_PROGRAM: {
      uint8_t n = programLen;
      if (n < PROGRAM_MAX) program[n] = b;  // a longer one is consumed, then refused
      programLen = ++n;
      if (n == args[2]) finishArm();
      return;
    }
    default:  // ST_STALLED
      return;
  }
}

// ---- frames in -------------------------------------------------------------------------------

static uint8_t rx[2 + MAX_PAYLOAD + 2];
static uint8_t rxLen;
static uint8_t cobsLeft;        // data bytes left in the current COBS block
static bool cobsZeroPending;    // the current block ends in an implied zero
static bool rxBroken;           // overlong or malformed: drop until the delimiter
static uint16_t rxCrc = 0xFFFF;
static bool nakSent;

static void nak() {
  if (!nakSent) {
    nakSent = true;
    sendFrame(ctl, B_NAK, 0, 0);
  }
}

static void handleFrame() {
  // CRC-16/MCRF4XX over body+crc(LE) leaves a zero residue.
  if (rxBroken || cobsLeft != 0 || rxLen < 4 || rxCrc != 0) {
    if (rxLen > 0 || rxBroken) nak();
    return;
  }
  uint8_t type = rx[0];
  uint8_t seq = rx[1];
  uint8_t end = rxLen - 2;
  if (type == H_HELLO) {
    // Report the last ack first, so the host knows which commands this HELLO interrupts: always,
    // since an earlier report may have been lost on the way.
    fillCount = 0;
    sendFrame(ctl, B_ACK, 0, 0);
    chipDeselect();
    state = ST_OP;
    txLen = 0;
    disarm();
    expectedSeq = seq;
    nakSent = false;
    sessions++;
    endFrames = end > 2 && (rx[2] & 0x01);  // the host's options byte (none: all off)
    sendHello();
    return;
  }
  if (type != H_DATA) return;
  if (seq != expectedSeq) {
    uint8_t behind = expectedSeq - seq;
    if (behind < 128) sendFrame(ctl, B_ACK, 0, 0);  // a duplicate: re-acknowledge
    else nak();
    return;
  }
  expectedSeq++;
  nakSent = false;
  uint8_t i = 2;
  while (i < end) {
    if (state == ST_WRITE && !(xferFlags & (X_DUPLEX | X_PAIRS))) {
      // The bulk of every frame write: straight from the verified chunk into SPI.
      uint8_t n = end - i;
      if (writeLeft < n) n = (uint8_t)writeLeft;
      spiWrite(rx + i, n);
      i += n;
      writeLeft -= n;
      if (writeLeft == 0) endTransaction();
    } else {
      txPump();  // headers and small transactions: the line must not starve between them
      commandByte(rx[i++]);
    }
  }
}

// COBS-decode ring bytes from `p` into rx, with the CRC, up to `stop` or a delimiter (true, `*next`
// just past it). At 2 Mbaud this loop is most of what a received byte costs the main loop, so it is
// written out: the decoder's state in registers, the ring read through X, rx written through Y,
// the CRC table read through Z (crcUpdate's two lpm), and per data byte one count, one zero test
// and one COBS block count — 22 cycles a byte, where gcc's code for the same loop in C took 50.
// A frame too long for rx is dropped up to its delimiter (rxBroken).
__attribute__((always_inline)) static inline bool decode(const uint8_t *p, const uint8_t *stop, const uint8_t **next) {
  bool delimiter = false;
  if (!rxBroken) {
    uint8_t *out = rx + rxLen;
    uint8_t left = cobsLeft, pending = cobsZeroPending;
    uint8_t lo = (uint8_t)rxCrc, hi = (uint8_t)(rxCrc >> 8);
    const uint8_t *table = crcTable;
    while (p != stop) {
      uint8_t room = (uint8_t)(rx + sizeof(rx) - out);
      if (room == 0) {
        // rx is full: the frame must end here. (A code byte that stores nothing follows only a
        // full 254-byte block, far longer than rx.)
        if (*p++ == 0) delimiter = true;
        else rxBroken = true;  // overlong: drop until the delimiter
        break;
      }
      // Each byte stores at most one, so a run of `room` bytes cannot overflow rx: no check inside.
      uint16_t avail = (uint16_t)(stop - p);
      uint8_t n = (avail < room ? (uint8_t)avail : room) + 1;  // the loop takes n - 1 bytes
      uint8_t b;
      // rx is written through Y, which gcc may hold as the frame pointer: kept around.
      asm volatile(
          "push r28\n\t"
          "push r29\n\t"
          "movw r28, %[out]\n\t"
          "rjmp 2f\n\t"
          // A byte for rx: store it, then crc = (crc >> 8) ^ T[(crc ^ b) & 0xFF] (crcUpdate).
          "1: st Y+, %[b]\n\t"
          "eor %[lo], %[b]\n\t"
          "mov %A[table], %[lo]\n\t"
          "lpm %[lo], Z\n\t"
          "eor %[lo], %[hi]\n\t"
          "inc %B[table]\n\t"
          "lpm %[hi], Z\n\t"
          "dec %B[table]\n\t"
          "2: dec %[n]\n\t"
          "breq 9f\n\t"
          "ld %[b], X+\n\t"
          "tst %[b]\n\t"
          "breq 9f\n\t"
          "subi %[left], 1\n\t"  // a data byte of the block (left was not 0)
          "brcc 1b\n\t"
          // A code byte: the block before it ends in a zero unless it was a full 0xFF block.
          "mov %[left], %[b]\n\t"
          "subi %[left], 1\n\t"
          "bst %[pending], 0\n\t"
          "ldi %[pending], 1\n\t"
          "cpi %[b], 0xFF\n\t"
          "brne 3f\n\t"
          "clr %[pending]\n\t"
          "3: clr %[b]\n\t"
          "brts 1b\n\t"
          "rjmp 2b\n\t"
          "9: movw %[out], r28\n\t"
          "pop r29\n\t"
          "pop r28\n\t"
          : [p] "+x"(p), [out] "+r"(out), [table] "+z"(table), [n] "+r"(n), [left] "+d"(left),
            [pending] "+d"(pending), [lo] "+r"(lo), [hi] "+r"(hi), [b] "=&d"(b)
          :
          : "memory");
      if (n != 0) {  // stopped at a delimiter, not at the end of its count
        delimiter = true;
        break;
      }
    }
    rxLen = (uint8_t)(out - rx);
    cobsLeft = left;
    cobsZeroPending = pending;
    rxCrc = (uint16_t)hi << 8 | lo;
  }
  if (rxBroken && !delimiter) {
    while (p != stop) {
      if (*p++ == 0) {
        delimiter = true;
        break;
      }
    }
  }
  *next = p;
  return delimiter;
}

// A credit report in the middle of a stream from the host. The USB-serial chip forwards it only
// when its buffer fills or its timer runs (16U2: more than 96 bytes or every 4.096 ms; FT232R: 62
// bytes or its 16 ms latency timer), and the idle fill that pushes replies through goes only when
// the sketch is idle, which a full stream never leaves it. So the host would get its credit back on
// the chip's timer, and the line would run dry waiting for it (the window is 6.2 ms of line at
// 2 Mbaud on the Uno, the report's way back and the data's USB frame ≈ 4–6 ms on the 16U2's grid). The fill's
// zeros go into the transmit ring right behind the report, when nothing else is on its way (a busy
// board → host direction pushes the chip by itself); they go out during the SPI writes, whose
// shift time hides their pumping.
// `n` (> 0) zeros from `p`: 5 cycles each (gcc's loop over txRing[h++] took 9).
__attribute__((always_inline)) static inline void zeros(uint8_t *p, uint8_t n) {
  asm volatile("1: st Z+, __zero_reg__\n\t"
               "dec %[n]\n\t"
               "brne 1b"
               : [p] "+z"(p), [n] "+r"(n)
               :
               : "memory");
}

static void reportUnderStream() {
  uint8_t before = txHead;
  bool alone = txTail == before;
  sendFrame(ctl, B_ACK, 0, 0);
  if (!alone) return;
  // The report's own bytes count towards the chip's threshold.
  uint8_t frame = (uint8_t)(txHead - before);
  if (fillCount <= frame) return;
  uint8_t n = fillCount - frame;
  uint8_t room = (uint8_t)(txTail - txHead - 1);
  if (n > room) n = room;
  if (n == 0) return;
  uint8_t h = txHead;
  uint8_t toEnd = (uint8_t)(0 - h);  // slots before the ring wraps (0: all 256)
  if (toEnd == 0 || toEnd > n) toEnd = n;
  zeros(txRing + h, toEnd);
  if (n > toEnd) zeros(txRing, n - toEnd);
  txHead = h + n;
  txCommit = h + n;
  fillLeft = 0;
}

static void endFrame() {
  handleFrame();
  rxLen = 0;
  cobsLeft = 0;
  cobsZeroPending = false;
  rxBroken = false;
  rxCrc = 0xFFFF;
}

// ---- main ------------------------------------------------------------------------------------

void setup() {
  takeResetCause();
  // millis() is not used (waitPumping counts timer 0 itself): its ≈100-cycle overflow ISR would
  // hold the UART's receive ISR off past the FIFO at 2 Mbaud.
  TIMSK0 &= ~_BV(TOIE0);
  if (PIN_SD_CS >= 0) {
    digitalWrite(PIN_SD_CS, HIGH);  // latch high first: the SD card is never selected
    pinMode(PIN_SD_CS, OUTPUT);
  }
  if (SS != PIN_CS) {
    digitalWrite(SS, HIGH);  // SPI master mode needs SS as an output (or an input held high)
    pinMode(SS, OUTPUT);
  }
  // Output latch high first (pull-up), then output: CS never glitches low at boot.
  digitalWrite(PIN_CS, HIGH);
  pinMode(PIN_CS, OUTPUT);
  csPort = portOutputRegister(digitalPinToPort(PIN_CS));
  csMask = digitalPinToBitMask(PIN_CS);
  digitalWrite(PIN_RESET, HIGH);
  pinMode(PIN_RESET, OUTPUT);
  pinMode(SCK, OUTPUT);
  pinMode(MOSI, OUTPUT);
  pinMode(MISO, INPUT);
  SPCR = _BV(SPE) | _BV(MSTR);  // mode 0, MSB first
  SPSR = _BV(SPI2X);            // fosc/2 = 8 MHz (ENC28J60 errata #1: rev < B5 needs >= 8 MHz)
  pinMode(PIN_INT, INPUT_PULLUP);
  intPort = portInputRegister(digitalPinToPort(PIN_INT));
  intMask = digitalPinToBitMask(PIN_INT);
  // Any change of the INT pin sets the flag (ATmega328P §13.2.1 EICRA ISC0 = 01; ATmega2560 §15.2.2
  // EICRB ISC4 = 01), a stale flag from before is cleared first.
#if defined(__AVR_ATmega2560__)
  EICRB = (EICRB & ~(_BV(ISC41) | _BV(ISC40))) | _BV(ISC40);
  EIFR = _BV(INTF4);
  EIMSK |= _BV(INT4);
#else
  EICRA = (EICRA & ~(_BV(ISC01) | _BV(ISC00))) | _BV(ISC00);
  EIFR = _BV(INTF0);
  EIMSK |= _BV(INT0);
#endif
  GPIOR0 = 0;
  edgeLevel = intAsserted();
  reportedIntEdges = intEdges;
  reportedIntLevel = edgeLevel;
  uartBegin(BRIDGE_BAUD);
  sendHello();
}

void loop() {
  takeLineErrors();
  for (;;) {
    uint16_t head = ringHead();
    uint16_t tail = ringTail;
    if (tail == head) break;
    // Decode the contiguous run up to head or the ring's end; stop early at a delimiter, so the
    // bytes are out of the ring (and counted as consumed) before the frame is acted on.
    const uint8_t *start = ring + tail;
    const uint8_t *next;
    bool delimiter = decode(start, ring + (head > tail ? head : RING_SIZE), &next);
    uint16_t used = (uint16_t)(next - start);
    ringTail = tail + used == RING_SIZE ? 0 : tail + used;  // decode stops at the ring's end
    consumed += used;
    txPump();
    if (delimiter) {
      endFrame();
      if ((uint16_t)(consumed - reportedConsumed) >= ACK_EVERY) reportUnderStream();
    }
  }
  // Ring empty between frames: return what is unreported (one ACK per burst, not per byte).
  bool betweenFrames = rxLen == 0 && cobsLeft == 0 && !cobsZeroPending && !rxBroken;
  if (betweenFrames && (consumed != reportedConsumed || expectedSeq != reportedSeq)) sendFrame(ctl, B_ACK, 0, 0);
  pollEvents();
  // The ring has been looked at (host commands first); now the program, if a run is due.
  if (armed && state == ST_OP && !selected && (runDue || countEdges() != runEdges)) runProgram();
  // Nothing else to do this pass: keep the line fed until the transmit ring is drained or there
  // is work (a host byte, an INT edge, a run due). One pass of this loop takes longer than a
  // character at 2 Mbaud (5 µs): a pump per pass left the line idle about half the time.
  uint8_t *in = ringIn();
  while (txTail != txCommit && ringIn() == in && !INT_FLAGGED() && !(armed && (runDue || intEdges != runEdges))) txPump();
  txIdle();
}
