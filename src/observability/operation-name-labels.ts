/** A GraphQL name (the spec's Name), at most 64 characters: longer ones are not worth a series. */
const GRAPHQL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * Label values for operation names, from a bounded set. An operation name is whatever the
 * client wrote, so labelling by it as sent would let anyone create a series per request (and
 * grow Prometheus without end). Here a name becomes a label value only if it is a valid GraphQL
 * name, came from a caller with credentials (a member, an API key, a platform admin: someone
 * the installation let in), and fewer than `max` names are known yet; the rest share "(other)".
 * Signed-out callers (login, invitations) only reuse names already known, else "(signed-out)".
 *
 * Reserved values are in parentheses, which GraphQL names cannot contain, so they never clash.
 * First come, first kept, for the life of the process: a restart relearns the names in use.
 */
export class OperationNameLabels {
  static readonly OTHER = '(other)';
  static readonly ANONYMOUS = '(anonymous)';
  static readonly SIGNED_OUT = '(signed-out)';
  static readonly REFUSED = '(refused)';

  private readonly known = new Set<string>();

  constructor(private readonly max: number) {}

  labelOf(operationName: string | null | undefined, signedIn: boolean): string {
    if (!operationName) return OperationNameLabels.ANONYMOUS;
    if (this.known.has(operationName)) return operationName;
    if (!signedIn) return OperationNameLabels.SIGNED_OUT;
    if (!GRAPHQL_NAME.test(operationName) || this.known.size >= this.max) return OperationNameLabels.OTHER;
    this.known.add(operationName);
    return operationName;
  }
}
