/**
 * The reference the batch tests compare with: a core whose `mapPages` is
 * `n` single-page `map` calls in order, what callers did before the batch.
 */
import type { IommuCore, IommuDomain } from "../../lib/iommu/core.ts";
import type { MapPagesResult } from "../../lib/iommu/types.ts";
import type { Prot } from "../../lib/sim/units.ts";

/** Makes `core.mapPages` one `core.map` call per page. */
export function mapPagesOneByOne(core: IommuCore): void {
  core.mapPages = (
    domain: IommuDomain,
    iova: number,
    pfns: ArrayLike<number>,
    from: number,
    n: number,
    prot: Prot,
    r: MapPagesResult,
  ): void => {
    for (let k = 0; k < n; k++) {
      r.ns += core.map(
        domain,
        iova + k * 4096,
        pfns[from + k]! * 4096,
        4096,
        prot,
      );
      r.pages++;
    }
  };
}
