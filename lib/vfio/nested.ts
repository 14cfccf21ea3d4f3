/**
 * Nested IOPF of the 2021 RFC (VFIO_TYPE1_NESTING_IOMMU): binding a
 * device's guest stage 1 on the container's stage 2
 * (VFIO_IOMMU_SET_PASID_TABLE), passing the guest's stage-1 invalidations
 * on (VFIO_IOMMU_CACHE_INVALIDATE), and forwarding stage-1 faults to the
 * VMM through the DMA fault region (fault_region.ts). Stage-2 faults of a
 * nested device are the type1 handler's (iopf.ts). Private to lib/vfio;
 * the public entry points are the {@linkcode VfioContainer} methods of the
 * same names.
 *
 * @module
 */
import type { IommuDomain } from "../iommu/core.ts";
import {
  FAULT_REPORT_NESTED_L1,
  type IommuDevice,
  type NestedConfig,
  newIotlbGather,
} from "../iommu/types.ts";
import { IopfLabError } from "../sim/errors.ts";
import { PAGE_SIZE } from "../sim/units.ts";
import { type DeviceState, needDomain, type VfioState } from "./_state.ts";
import { VfioDmaFaultRegion } from "./fault_region.ts";
import { checkIopfCapable, switchToNestedL2 } from "./iopf.ts";

/**
 * Sets up the DMA fault region of `s` (once) and registers the NESTED_L1
 * handler of every attached device; see
 * {@linkcode VfioContainer.enableFaultRegion}.
 */
export function enableFaultRegion(
  s: VfioState,
  options: { entries?: number },
): VfioDmaFaultRegion {
  needDomain(s, "enable the DMA fault region");
  if (s.type !== "nesting") {
    throw new IopfLabError(
      "EINVAL",
      "Cannot enable the DMA fault region: the container is not a nesting container",
    );
  }
  if (s.region) return s.region;
  checkIopfCapable(s, "enable the DMA fault region");
  const regionOptions = {
    costs: s.costs,
    core: s.core,
    devId: (dev: IommuDevice) => s.devices.get(dev)?.devId ?? -1,
  };
  s.region = new VfioDmaFaultRegion(
    s.sim,
    options.entries === undefined
      ? regionOptions
      : { ...regionOptions, entries: options.entries },
  );
  for (const [dev, ds] of s.devices) registerL1(s, dev, ds);
  return s.region;
}

/**
 * Enables the recoverable faults of `dev` (once) and registers the fault
 * region's handler for its stage-1 faults (FAULT_REPORT_NESTED_L1).
 */
export function registerL1(
  s: VfioState,
  dev: IommuDevice,
  ds: DeviceState,
): void {
  if (!ds.iopfEnabled) {
    s.core.devEnableIopf(dev);
    ds.iopfEnabled = true;
  }
  const region = s.region!;
  s.core.registerDeviceFaultHandler(
    dev,
    (g, done) => region.handleGroup(g, done),
    FAULT_REPORT_NESTED_L1,
  );
}

/**
 * VFIO_IOMMU_SET_PASID_TABLE: moves `dev` to a nested domain with the
 * guest's stage-1 `config`; see {@linkcode VfioContainer.setPasidTable}.
 */
export function setPasidTable(
  s: VfioState,
  dev: IommuDevice,
  config: NestedConfig,
  done: (() => void) | undefined,
): void {
  const domain = needDomain(s, "set a PASID table");
  if (s.type !== "nesting") {
    throw new IopfLabError(
      "EINVAL",
      `Cannot set a PASID table for ${dev.name}: the container is not a nesting container`,
    );
  }
  const ds = s.devices.get(dev);
  if (!ds) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot set a PASID table for ${dev.name}: not attached`,
    );
  }
  const old = ds.nested;
  const nested = s.core.domainAllocNested(domain, config);
  ds.nested = nested;
  s.core.replaceDevice(nested, dev, done);
  if (!old) switchToNestedL2(s, dev);
  if (old) s.core.domainFree(old);
}

/**
 * VFIO_IOMMU_CACHE_INVALIDATE: invalidates [iova, iova + size) in the
 * nested domains of `s` (all, or `dev`'s); see
 * {@linkcode VfioContainer.cacheInvalidate}.
 */
export function cacheInvalidate(
  s: VfioState,
  range: { iova: number; size: number; dev?: IommuDevice },
  done: (() => void) | undefined,
): void {
  const targets: IommuDomain[] = [];
  for (const [dev, ds] of s.devices) {
    if (ds.nested && (range.dev === undefined || range.dev === dev)) {
      targets.push(ds.nested);
    }
  }
  let left = targets.length;
  if (left === 0) {
    s.sim.after(0, () => done?.());
    return;
  }
  for (const d of targets) {
    const g = newIotlbGather();
    g.start = range.iova;
    g.end = range.iova + range.size;
    g.pgsize = PAGE_SIZE;
    g.entries = Math.max(1, Math.ceil(range.size / PAGE_SIZE));
    s.core.iotlbSync(d, g, () => {
      if (--left === 0) done?.();
    });
  }
}
