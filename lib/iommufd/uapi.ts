/**
 * The byte layouts and constants of iommufd's fault uAPI
 * (include/uapi/linux/iommufd.h, Linux 6.11):
 * struct iommu_hwpt_pgfault (40 bytes, what read() of a fault fd returns per
 * fault), struct iommu_hwpt_page_response (8 bytes, what write() takes per
 * group). All fields are little-endian, as on an arm64 host.
 *
 * @module
 */
import { IopfLabError } from "../sim/errors.ts";
import { MAX_ADDRESS } from "../sim/units.ts";

export {
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IOMMU_PGFAULT_PERM_EXEC,
  IOMMU_PGFAULT_PERM_PRIV,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
} from "../vfio/fault_region.ts";

/** sizeof(struct iommu_hwpt_pgfault): five u32, a hole, u64 addr, two u32. */
export const IOMMU_HWPT_PGFAULT_SIZE = 40;
/** sizeof(struct iommu_hwpt_page_response): u32 cookie, u32 code. */
export const IOMMU_HWPT_PAGE_RESPONSE_SIZE = 8;

/** IOMMU_HWPT_ALLOC_NEST_PARENT: the paging HWPT can be a nested HWPT's stage 2. */
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
/** IOMMU_HWPT_FAULT_ID_VALID: the HWPT delivers its faults to the fault object `faultId`. */
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 4;

/** Byte offsets of struct iommu_hwpt_pgfault's fields (offset 20 is the u64's alignment hole, `__reserved` since 6.12). */
export const PGFAULT_OFFSETS = {
  flags: 0,
  devId: 4,
  pasid: 8,
  grpid: 12,
  perm: 16,
  addr: 24,
  length: 32,
  cookie: 36,
} as const;

/** One fault as user space reads it (struct iommu_hwpt_pgfault). */
export interface IommuHwptPgfault {
  /** IOMMU_PGFAULT_FLAGS_PASID_VALID | IOMMU_PGFAULT_FLAGS_LAST_PAGE. */
  readonly flags: number;
  /** The iommufd object id of the device (the dev_id of VFIO_DEVICE_BIND_IOMMUFD). */
  readonly devId: number;
  /** PASID, valid with PASID_VALID. */
  readonly pasid: number;
  /** Page request group index (PRGI) or stall tag. */
  readonly grpid: number;
  /** IOMMU_PGFAULT_PERM_*. */
  readonly perm: number;
  /** The faulting address (for a nested HWPT: the guest's stage-1 input address). */
  readonly addr: number;
  /** A hint of how many bytes the requester will touch; 0 when there is none (always, in 6.11). */
  readonly length: number;
  /** The kernel's cookie of the group; the same in every record of one group. */
  readonly cookie: number;
}

/** One response as user space writes it (struct iommu_hwpt_page_response). */
export interface IommuHwptPageResponse {
  /** The cookie of the group's records. */
  readonly cookie: number;
  /** IOMMUFD_PAGE_RESP_SUCCESS (0) or IOMMUFD_PAGE_RESP_INVALID (1). */
  readonly code: number;
}

function u32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot encode ${what} ${String(v)}: expected a u32`,
    );
  }
  return v;
}

/** Writes `rec` as 40 bytes at `offset` of `view`. */
export function encodePgfault(
  view: DataView,
  offset: number,
  rec: IommuHwptPgfault,
): void {
  if (!Number.isInteger(rec.addr) || rec.addr < 0 || rec.addr >= MAX_ADDRESS) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot encode fault address ${
        String(rec.addr)
      }: expected an address below 2^52`,
    );
  }
  const o = PGFAULT_OFFSETS;
  view.setUint32(offset + o.flags, u32(rec.flags, "flags"), true);
  view.setUint32(offset + o.devId, u32(rec.devId, "dev_id"), true);
  view.setUint32(offset + o.pasid, u32(rec.pasid, "pasid"), true);
  view.setUint32(offset + o.grpid, u32(rec.grpid, "grpid"), true);
  view.setUint32(offset + o.perm, u32(rec.perm, "perm"), true);
  view.setUint32(offset + 20, 0, true);
  view.setUint32(offset + o.addr, rec.addr % 2 ** 32, true);
  view.setUint32(offset + o.addr + 4, Math.floor(rec.addr / 2 ** 32), true);
  view.setUint32(offset + o.length, u32(rec.length, "length"), true);
  view.setUint32(offset + o.cookie, u32(rec.cookie, "cookie"), true);
}

/** Reads the 40-byte record at `offset` of `view`. */
export function decodePgfault(
  view: DataView,
  offset: number,
): IommuHwptPgfault {
  if (offset < 0 || offset + IOMMU_HWPT_PGFAULT_SIZE > view.byteLength) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot decode a fault record at byte ${offset}: the buffer holds ${view.byteLength} bytes`,
    );
  }
  const o = PGFAULT_OFFSETS;
  return {
    flags: view.getUint32(offset + o.flags, true),
    devId: view.getUint32(offset + o.devId, true),
    pasid: view.getUint32(offset + o.pasid, true),
    grpid: view.getUint32(offset + o.grpid, true),
    perm: view.getUint32(offset + o.perm, true),
    addr: view.getUint32(offset + o.addr + 4, true) * 2 ** 32 +
      view.getUint32(offset + o.addr, true),
    length: view.getUint32(offset + o.length, true),
    cookie: view.getUint32(offset + o.cookie, true),
  };
}

/** Every record of a read() buffer (a whole number of 40-byte records). */
export function decodePgfaults(bytes: Uint8Array): IommuHwptPgfault[] {
  if (bytes.byteLength % IOMMU_HWPT_PGFAULT_SIZE !== 0) {
    throw new IopfLabError(
      "EINVAL",
      `Cannot decode ${bytes.byteLength} bytes of fault records: not a multiple of ${IOMMU_HWPT_PGFAULT_SIZE}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: IommuHwptPgfault[] = [];
  for (let o = 0; o < bytes.byteLength; o += IOMMU_HWPT_PGFAULT_SIZE) {
    out.push(decodePgfault(view, o));
  }
  return out;
}

/** The bytes of write() for `responses` (8 bytes each: cookie, code). */
export function encodePageResponses(
  responses: readonly IommuHwptPageResponse[],
): Uint8Array {
  const bytes = new Uint8Array(
    responses.length * IOMMU_HWPT_PAGE_RESPONSE_SIZE,
  );
  const view = new DataView(bytes.buffer);
  responses.forEach((r, i) => {
    const o = i * IOMMU_HWPT_PAGE_RESPONSE_SIZE;
    view.setUint32(o, u32(r.cookie, "cookie"), true);
    view.setUint32(o + 4, u32(r.code, "code"), true);
  });
  return bytes;
}

/** The response at byte `offset` of `view` (no check of the code: the write path checks it). */
export function decodePageResponse(
  view: DataView,
  offset: number,
): IommuHwptPageResponse {
  return {
    cookie: view.getUint32(offset, true),
    code: view.getUint32(offset + 4, true),
  };
}

/** IOMMU_VIOMMU_TYPE_ARM_SMMUV3 (enum iommu_viommu_type, Linux 6.13). */
export const IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1;
/** IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 (enum iommu_veventq_type, Linux 6.15). */
export const IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1;
/** IOMMU_VEVENTQ_FLAG_LOST_EVENTS: the queue lost events (a header with no data after it). */
export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;
/** sizeof(struct iommufd_vevent_header): u32 flags, u32 sequence. */
export const IOMMUFD_VEVENT_HEADER_SIZE = 8;
/** sizeof(struct iommu_vevent_arm_smmuv3): the 32-byte SMMUv3 event record, little-endian. */
export const IOMMU_VEVENT_ARM_SMMUV3_SIZE = 32;
/** The largest vEVENT sequence number (INT_MAX); the one after it is 0. */
export const VEVENT_SEQUENCE_MAX = 0x7fff_ffff;

/** One vEVENT as user space reads it from a vEVENTQ fd. */
export interface IommufdVevent {
  /** IOMMU_VEVENTQ_FLAG_LOST_EVENTS or 0. */
  readonly flags: number;
  /** Its sequence number, in [0, INT_MAX], one more than the previous event's (mod 2^31) unless events were lost. */
  readonly sequence: number;
  /** The event record (8 little-endian u32, StreamID = the vSID); absent in a LOST_EVENTS header. */
  readonly evt: Uint32Array | undefined;
}

/**
 * Decodes what read() of an ARM_SMMUV3 vEVENTQ returned: headers, each
 * followed by a 32-byte record unless it carries LOST_EVENTS.
 *
 * @throws {IopfLabError} EINVAL when the bytes end inside a header or record
 */
export function decodeVevents(bytes: Uint8Array): IommufdVevent[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: IommufdVevent[] = [];
  let o = 0;
  while (o < bytes.byteLength) {
    if (o + IOMMUFD_VEVENT_HEADER_SIZE > bytes.byteLength) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot decode vEVENTs: ${
          bytes.byteLength - o
        } bytes left at byte ${o}, less than a header`,
      );
    }
    const flags = view.getUint32(o, true);
    const sequence = view.getUint32(o + 4, true);
    o += IOMMUFD_VEVENT_HEADER_SIZE;
    if (flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) {
      out.push({ flags, sequence, evt: undefined });
      continue;
    }
    if (o + IOMMU_VEVENT_ARM_SMMUV3_SIZE > bytes.byteLength) {
      throw new IopfLabError(
        "EINVAL",
        `Cannot decode vEVENTs: the record after the header at byte ${
          o - IOMMUFD_VEVENT_HEADER_SIZE
        } is cut short`,
      );
    }
    const evt = new Uint32Array(IOMMU_VEVENT_ARM_SMMUV3_SIZE / 4);
    for (let i = 0; i < evt.length; i++) {
      evt[i] = view.getUint32(o + 4 * i, true);
    }
    o += IOMMU_VEVENT_ARM_SMMUV3_SIZE;
    out.push({ flags, sequence, evt });
  }
  return out;
}
