import { z } from 'zod';
import { boundedText } from '../fleet/fleet-input';

/* Validation of stop and note inputs beyond what GraphQL types say; a failure names the field. */

/** Longest signature data URL: a signature pad's PNG fits easily, a photo does not. */
export const MAX_SIGNATURE_LENGTH = 65_536;
export const MAX_NOTE_LENGTH = 4_000;

/** The image types a signature may be, and how each one's bytes begin. */
const SIGNATURE_TYPES: Record<string, (bytes: Buffer) => boolean> = {
  'image/png': (bytes) => bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
  'image/jpeg': (bytes) => bytes.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff])),
  // No SVG: it is markup a browser runs if a client ever shows it other than as an <img>, and a
  // review got scripts past a deny-list (entity-encoded javascript:, <set>/<animate> handlers,
  // namespaced <script>). Signature pads export PNG.
};

const DATA_URL = /^data:([a-z+/]+);base64,([A-Za-z0-9+/]*={0,2})$/;

/** A `data:<image type>;base64,<bytes>` URL of a supported image type whose bytes are that type. */
export function isSignatureDataUrl(value: string): boolean {
  const match = DATA_URL.exec(value);
  if (!match || match[2]!.length === 0 || match[2]!.length % 4 !== 0) return false;
  const looksRight = SIGNATURE_TYPES[match[1]!];
  return looksRight !== undefined && looksRight(Buffer.from(match[2]!, 'base64'));
}

const signature = z
  .string()
  .max(MAX_SIGNATURE_LENGTH, `must be at most ${MAX_SIGNATURE_LENGTH} characters`)
  .refine(isSignatureDataUrl, 'must be a data:image/png or image/jpeg URL in base64 whose bytes are that image type');

const windowInOrder = (stop: { windowStart?: Date | null; windowEnd?: Date | null }) => !stop.windowStart || !stop.windowEnd || stop.windowEnd >= stop.windowStart;
export const WINDOW_ISSUE = { message: 'must not be before windowStart', path: ['windowEnd'] };

const stopFields = {
  kind: z.enum(['PICKUP', 'DROP_OFF']),
  address: boundedText(500),
  windowStart: z.date(),
  windowEnd: z.date(),
};

export const addStopSchema = z
  .object({
    tripId: z.string(),
    kind: stopFields.kind,
    address: stopFields.address,
    windowStart: stopFields.windowStart.nullish(),
    windowEnd: stopFields.windowEnd.nullish(),
    sequence: z.number().int().min(1, 'must be 1 or more').nullish(),
  })
  .refine(windowInOrder, WINDOW_ISSUE);

/** Window ends a change may clear with null. */
export const CLEARABLE_STOP_FIELDS = ['windowStart', 'windowEnd'] as const;

export const updateStopSchema = z.object({
  kind: stopFields.kind.optional(),
  address: stopFields.address.optional(),
  windowStart: stopFields.windowStart.nullable().optional(),
  windowEnd: stopFields.windowEnd.nullable().optional(),
  expectedVersion: z.number().int().optional(),
});

export const completeStopSchema = z.object({
  id: z.string(),
  proofOfDelivery: z
    .object({
      recipientName: boundedText(200),
      note: boundedText(2_000).nullish(),
      signature: signature.nullish(),
    })
    .nullish(),
});

export const noteSchema = z.object({ body: boundedText(MAX_NOTE_LENGTH) });

export { windowInOrder };
