import { Rng } from "../../lib/sim/rng.ts";
import { Simulator } from "../../lib/sim/simulator.ts";
import type {
  DmaContext,
  DmaOp,
  TransferResult,
} from "../../lib/workload/types.ts";
import { GuestRamAllocator } from "../../lib/workload/guest_ram.ts";

/** A DmaContext with identity mapping and a fixed-bandwidth device, for workload tests. */
export class FakeContext implements DmaContext {
  readonly sim = new Simulator();
  readonly rng = new Rng(1);
  readonly ops: Array<DmaOp & { at: number }> = [];
  readonly maps: Array<[number, number]> = [];
  readonly unmaps: Array<[number, number]> = [];
  /** The guest CPU's writes: [gpa, size, time]. */
  readonly cpuWrites: Array<[number, number, number]> = [];
  readonly counters = new Map<string, number>();
  readonly alloc: GuestRamAllocator;
  busyUntil = 0;
  /** ns per byte of the fake device; `fail` makes a DMA fail. */
  constructor(
    readonly guestMemory = 1 << 30,
    readonly nsPerByte = 0.125,
    readonly fail: (op: DmaOp) => boolean = () => false,
  ) {
    this.alloc = new GuestRamAllocator(guestMemory);
  }
  allocBuffer(size: number): number {
    return this.alloc.alloc(size);
  }
  allocFresh(size: number): number {
    return this.alloc.allocFresh(size);
  }
  freeBuffer(gpa: number, size: number): void {
    this.alloc.free(gpa, size);
  }
  dmaMap(
    gpa: number,
    size: number,
    _write: boolean,
    done: (iova: number) => void,
  ): void {
    this.maps.push([gpa, size]);
    this.sim.after(0, () => done(gpa));
  }
  cpuWrite(gpa: number, size: number, done: () => void): void {
    this.cpuWrites.push([gpa, size, this.sim.now]);
    this.sim.after(0, done);
  }
  dmaUnmap(iova: number, size: number, done: () => void): void {
    this.unmaps.push([iova, size]);
    this.sim.after(0, done);
  }
  dma(op: DmaOp, done: (r: TransferResult) => void): void {
    this.ops.push({ ...op, at: this.sim.now });
    const start = Math.max(this.sim.now, this.busyUntil);
    this.busyUntil = start + op.size * this.nsPerByte;
    const ok = !this.fail(op);
    this.sim.at(this.busyUntil, () => done({ ok, bytes: ok ? op.size : 0 }));
  }
  count(name: string, n = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + n);
  }
}
