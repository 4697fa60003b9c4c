/*
 * A real AVR image (bootloader + sketch hex files) in simavr, driven line by line from
 * boards/bootloader/simavr.ts over stdin/stdout, in lock step with its virtual clock.
 *
 *   harness MCU FREQ_HZ
 *   load PATH            Intel HEX into flash at its addresses      -> ok BYTES
 *   bootrst ADDR         reset vector (byte address: BOOTRST fuse)  -> ok
 *   power SEED           power-on: registers and SRAM random, MCUSR = PORF      -> ok
 *   reset MCUSR          reset with these MCUSR flags; registers and SRAM kept  -> ok
 *   rx CYCLE BYTE FE     a byte finishes arriving on RXD0 at CYCLE (FE: bad stop bit)
 *   run CYCLE            execute up to CYCLE -> tx CYCLE BYTE ... then at CYCLE PC UBRR U2X RXEN
 *   flash ADDR LEN       -> hex bytes
 *   peek ADDR LEN        data space -> hex bytes
 *   quit
 *
 * The UART is modelled here, not by simavr's (a 64-byte input FIFO; UDRE lost once the
 * transmitter is switched off and on): the receiver's two-byte FIFO and shift register, DOR when a
 * byte is lost, FE per byte (ATmega328P datasheet §20.7, §20.11.2), so a bootloader sees at the
 * board's rate what a host sent at another and loses what it does not read in time; the
 * transmitter's UDR and shift register (§20.6), each byte reported with the cycle its start bit
 * goes out. simavr's own output goes to stderr; this protocol to stdout.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "avr_uart.h"
#include "sim_avr.h"
#include "sim_cycle_timers.h"
#include "sim_hex.h"
#include "sim_interrupts.h"
#include "sim_io.h"
#include "sim_irq.h"

/* Data-space addresses of USART0, the same on the ATmega328P and the ATmega2560. */
#define UCSR0A 0xC0
#define UCSR0B 0xC1
#define UBRR0L 0xC4
#define UBRR0H 0xC5
#define UDR0 0xC6
#define MCUSR_ADDR 0x54
#define FE_BIT 0x10
#define DOR_BIT 0x08
#define RXEN_BIT 0x10
#define TXEN_BIT 0x08
#define U2X_BIT 0x02
#define UDRE_BIT 0x20
#define TXC_BIT 0x40

static FILE *out;
static avr_t *avr;
static avr_uart_t *uart;

/* Receiver: FIFO of two, a completed byte waiting in the shift register, DOR. */
static struct { uint8_t byte, fe; } fifo[2], shift;
static int fifoLen, shiftFull, overrun;

typedef struct pending_rx {
  avr_cycle_count_t at;
  uint8_t byte, fe;
  struct pending_rx *next;
} pending_rx;
static pending_rx *pending;

static void updateRxc(void) {
  if (fifoLen > 0) avr_raise_interrupt(avr, &uart->rxc);
  else avr_clear_interrupt(avr, &uart->rxc);
}

/* Transmitter: a byte shifting out until txBusyUntil, one more waiting in UDR. */
static avr_cycle_count_t txBusyUntil;
static int udrFull, txDone = 1;
static uint8_t udrByte;

static avr_cycle_count_t charCycles(void) {
  unsigned ubrr = avr->data[UBRR0L] | (avr->data[UBRR0H] & 0x0F) << 8;
  return 10ULL * ((avr->data[UCSR0A] & U2X_BIT) ? 8 : 16) * (ubrr + 1);
}

static void startShift(avr_cycle_count_t at, uint8_t byte) {
  fprintf(out, "tx %llu %u\n", (unsigned long long)at, byte);
  txBusyUntil = at + charCycles();
  txDone = 0;
}

static avr_cycle_count_t txTimer(struct avr_t *a, avr_cycle_count_t when, void *param) {
  (void)a;
  (void)when;
  (void)param;
  if (udrFull) {
    udrFull = 0;
    startShift(txBusyUntil, udrByte);
    return txBusyUntil;
  }
  txDone = 1;
  return 0;
}

static void writeUdr(struct avr_t *a, avr_io_addr_t addr, uint8_t v, void *param) {
  (void)param;
  a->data[addr] = v;
  if (!(a->data[UCSR0B] & TXEN_BIT)) return;
  if (txDone && !udrFull) {
    startShift(a->cycle, v);
    avr_cycle_timer_cancel(a, txTimer, NULL);
    avr_cycle_timer_register(a, txBusyUntil - a->cycle, txTimer, NULL);
  } else {
    udrFull = 1; /* a byte written into a full UDR replaces the one there, as nothing checks */
    udrByte = v;
  }
}

static uint8_t readUcsra(struct avr_t *a, avr_io_addr_t addr, void *param) {
  (void)param;
  uint8_t v = a->data[addr] & ~(FE_BIT | DOR_BIT | UDRE_BIT | TXC_BIT);
  if (fifoLen > 0 && fifo[0].fe) v |= FE_BIT;
  if (overrun) v |= DOR_BIT;
  if (!udrFull) v |= UDRE_BIT;
  if (txDone) v |= TXC_BIT;
  return v;
}

static uint8_t readUdr(struct avr_t *a, avr_io_addr_t addr, void *param) {
  (void)param;
  uint8_t v = 0;
  if (fifoLen > 0) {
    v = fifo[0].byte;
    fifo[0] = fifo[1];
    fifoLen--;
    overrun = 0;
    if (shiftFull) {
      fifo[fifoLen++] = shift;
      shiftFull = 0;
    }
  }
  a->data[addr] = v;
  updateRxc();
  return v;
}

static void arrive(uint8_t byte, uint8_t fe) {
  if (!(avr->data[UCSR0B] & RXEN_BIT)) return;
  if (fifoLen < 2) {
    fifo[fifoLen].byte = byte;
    fifo[fifoLen++].fe = fe;
  } else {
    if (shiftFull) overrun = 1; /* the byte waiting in the shift register is lost */
    shift.byte = byte;
    shift.fe = fe;
    shiftFull = 1;
  }
  updateRxc();
}

static avr_cycle_count_t rxTimer(struct avr_t *a, avr_cycle_count_t when, void *param) {
  (void)a;
  (void)when;
  (void)param;
  while (pending && pending->at <= avr->cycle) {
    pending_rx *p = pending;
    pending = p->next;
    arrive(p->byte, p->fe);
    free(p);
  }
  if (pending) return pending->at > avr->cycle ? pending->at : avr->cycle + 1;
  return 0;
}

static void queueRx(avr_cycle_count_t at, uint8_t byte, uint8_t fe) {
  pending_rx *p = calloc(1, sizeof *p), **where = &pending;
  p->at = at;
  p->byte = byte;
  p->fe = fe;
  while (*where && (*where)->at <= at) where = &(*where)->next;
  p->next = *where;
  *where = p;
  avr_cycle_timer_cancel(avr, rxTimer, NULL);
  avr_cycle_timer_register(avr, pending->at > avr->cycle ? pending->at - avr->cycle : 1, rxTimer, NULL);
}

/* simavr's reset clears the I/O space and sets the reset PC; the register file and SRAM are not
 * initialised by a reset on the chip, so they are kept (power-on fills them with noise). */
static void resetWith(uint8_t mcusr) {
  avr_cycle_count_t cycle = avr->cycle; /* time goes on through a reset */
  avr_reset(avr);
  avr->state = cpu_Running;
  avr->cycle = cycle;
  avr->data[MCUSR_ADDR] = mcusr;
  fifoLen = shiftFull = overrun = udrFull = 0;
  txDone = 1;
  while (pending) {
    pending_rx *p = pending;
    pending = p->next;
    free(p);
  }
  /* simavr's reset re-registered its UART hooks; take the receiver back. */
  avr->io[AVR_DATA_TO_IO(UCSR0A)].r.c = readUcsra;
  avr->io[AVR_DATA_TO_IO(UDR0)].r.c = readUdr;
  avr->io[AVR_DATA_TO_IO(UDR0)].w.c = writeUdr;
  uint32_t flags = 0;
  avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
}

static void dump(const uint8_t *p, unsigned len) {
  for (unsigned i = 0; i < len; i++) fprintf(out, "%02x", p[i]);
  fputc('\n', out);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MCU FREQ_HZ\n", argv[0]);
    return 2;
  }
  out = fdopen(dup(1), "w");
  dup2(2, 1); /* simavr prints to stdout */
  avr = avr_make_mcu_by_name(argv[1]);
  if (!avr) return 2;
  avr_init(avr);
  avr->frequency = (uint32_t)strtoul(argv[2], NULL, 10);
  avr->log = 0;
  for (avr_io_t *port = avr->io_port; port; port = port->next) {
    if (!strcmp(port->kind, "uart") && ((avr_uart_t *)port)->name == '0') uart = (avr_uart_t *)port;
  }
  if (!uart) return 2;
  resetWith(0);
  char line[512];
  while (fgets(line, sizeof line, stdin)) {
    char cmd[16] = {0};
    unsigned long long a = 0, b = 0, c = 0;
    char path[400];
    sscanf(line, "%15s", cmd);
    if (!strcmp(cmd, "load") && sscanf(line, "%*s %399s", path) == 1) {
      ihex_chunk_p chunks = NULL;
      int n = read_ihex_chunks(path, &chunks);
      unsigned total = 0;
      for (int i = 0; i < n; i++) {
        if (chunks[i].baseaddr + chunks[i].size > avr->flashend + 1) {
          fprintf(out, "error chunk at 0x%x of %u bytes beyond flash\n", chunks[i].baseaddr, chunks[i].size);
          goto next;
        }
        memcpy(avr->flash + chunks[i].baseaddr, chunks[i].data, chunks[i].size);
        total += chunks[i].size;
      }
      if (n < 0) fprintf(out, "error cannot read %s\n", path);
      else fprintf(out, "ok %u\n", total);
      free_ihex_chunks(chunks);
    } else if (!strcmp(cmd, "bootrst") && sscanf(line, "%*s %llu", &a) == 1) {
      avr->reset_pc = (avr_flashaddr_t)a;
      fprintf(out, "ok\n");
    } else if (!strcmp(cmd, "power") && sscanf(line, "%*s %llu", &a) == 1) {
      srand((unsigned)a);
      for (unsigned i = 0; i <= avr->ramend; i++) avr->data[i] = (uint8_t)rand();
      resetWith(0x01); /* PORF */
      for (unsigned i = 0; i < 32; i++) avr->data[i] = (uint8_t)rand();
      fprintf(out, "ok\n");
    } else if (!strcmp(cmd, "reset") && sscanf(line, "%*s %llu", &a) == 1) {
      uint8_t regs[32];
      memcpy(regs, avr->data, 32);
      resetWith((uint8_t)a);
      memcpy(avr->data, regs, 32);
      fprintf(out, "ok\n");
    } else if (!strcmp(cmd, "rx") && sscanf(line, "%*s %llu %llu %llu", &a, &b, &c) == 3) {
      queueRx(a, (uint8_t)b, (uint8_t)c);
    } else if (!strcmp(cmd, "run") && sscanf(line, "%*s %llu", &a) == 1) {
      while (avr->cycle < a) {
        int state = avr_run(avr);
        /* simavr stops at an opcode it cannot decode (code run into data or erased flash); time
         * goes on for the dead chip until a reset */
        if (state == cpu_Done || state == cpu_Crashed) {
          avr->cycle = a;
          break;
        }
      }
      unsigned ubrr = avr->data[UBRR0L] | (avr->data[UBRR0H] & 0x0F) << 8;
      fprintf(out, "at %llu %u %u %u %u %d\n", (unsigned long long)avr->cycle, (unsigned)avr->pc, ubrr,
              (avr->data[UCSR0A] & U2X_BIT) ? 1 : 0, (avr->data[UCSR0B] & RXEN_BIT) ? 1 : 0, avr->state);
    } else if (!strcmp(cmd, "flash") && sscanf(line, "%*s %llu %llu", &a, &b) == 2 && a + b <= avr->flashend + 1ULL) {
      dump(avr->flash + a, (unsigned)b);
    } else if (!strcmp(cmd, "peek") && sscanf(line, "%*s %llu %llu", &a, &b) == 2 && a + b <= avr->ramend + 1ULL) {
      dump(avr->data + a, (unsigned)b);
    } else if (!strcmp(cmd, "quit")) {
      break;
    } else {
      fprintf(out, "error %s", line);
    }
  next:
    fflush(out);
  }
  return 0;
}
