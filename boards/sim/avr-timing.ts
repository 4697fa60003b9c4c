/**
 * avr8js's interrupt timing, made as the ATmega328P's. avr8js 0.21 (`cpu/interrupt.js`) takes an
 * interrupt in 2 cycles and serves the next pending one right after `reti`; on silicon:
 *
 * - "The interrupt execution response for all the enabled AVR interrupts is four clock cycles
 *   minimum" (ATmega328P datasheet §6.7.1, Interrupt Response Time; five with a 22-bit PC);
 * - "When the AVR exits from an interrupt, it will always return to the main program and execute
 *   one more instruction before any pending interrupt is served" (§6.7, Reset and Interrupt
 *   Handling), and likewise "the instruction following SEI will be executed before any pending
 *   interrupts" (§6.7).
 *
 * Back-to-back ISRs cost what they cost on the chip, so a sketch whose interrupts crowd out the
 * UART's receive ISR overruns in simulation as it would on a board. The CPU is stepped through
 * `step` instead of `avrInstruction(cpu); cpu.tick()`; avr8js itself is not changed.
 */
import { avrInstruction, type CPU } from 'avr8js';

const RETI = 0x9518;
const SEI = 0x9478;
const SREG = 0x5f;
const I_FLAG = 0x80;

export interface InterruptTiming {
  /** One instruction, then whatever interrupt is due, on the chip's timing. */
  step(): void;
  /** Interrupts taken so far. */
  readonly taken: number;
  /**
   * Per interrupt vector (its word address: the USART's receive vector is 0x24 on the 328P),
   * the handlers run and the cycles they took, from the interrupt's response to the end of its
   * `reti` (the vector's jump included): what each interrupt costs the main program.
   */
  readonly handlers: Map<number, { count: number; cycles: number }>;
}

export function honestInterruptTiming(cpu: CPU): InterruptTiming {
  // The cycles avr8js leaves out of an interrupt's response (4 on the 328P, 5 with a 22-bit PC).
  const missingCycles = cpu.pc22Bits ? 3 : 2;
  // The handler in progress (interrupts do not nest: the sketch never sets I inside one).
  let handler: { count: number; cycles: number } | undefined;
  let handlerStart = 0;
  const state = {
    taken: 0,
    handlers: new Map<number, { count: number; cycles: number }>(),
    step(): void {
      const opcode = cpu.progMem[cpu.pc];
      avrInstruction(cpu);
      if (opcode === RETI && handler) {
        handler.cycles += cpu.cycles - handlerStart;
        handler = undefined;
      }
      if (opcode === RETI || opcode === SEI) {
        // One more instruction runs before any interrupt: this tick still runs a due clock
        // event, with I hidden so nothing is served.
        const sreg = cpu.data[SREG]!;
        cpu.data[SREG] = sreg & ~I_FLAG;
        cpu.tick();
        cpu.data[SREG] = cpu.data[SREG]! | (sreg & I_FLAG);
        return;
      }
      const pc = cpu.pc;
      const before = cpu.cycles;
      cpu.tick();
      if (cpu.pc !== pc) {
        // tick() moves the PC only to take an interrupt.
        cpu.cycles += missingCycles;
        state.taken++;
        handler = state.handlers.get(cpu.pc);
        if (!handler) state.handlers.set(cpu.pc, (handler = { count: 0, cycles: 0 }));
        handler.count++;
        handlerStart = before;
      }
    },
  };
  return state;
}
