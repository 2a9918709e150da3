// Saving under a name that is someone's already: the server answers 409 with a reason, and
// the page asks before trying again. "exists": add to that person? "unlike": the faces do not
// look like theirs; add anyway? Nothing is stored until the user says yes.

/**
 * attempt({add, force}) -> the answer, or throws/returns a refusal with `reason`.
 * refusalOf(resultOrError) -> {reason, error, name} or null. Returns the final answer, or
 * null when the user said no.
 */
export async function withConfirmation(attempt, refusalOf, ask = (q) => window.confirm(q)) {
  const flags = { add: false, force: false };
  for (;;) {
    let answer;
    try {
      answer = await attempt(flags);
    } catch (err) {
      answer = err;
    }
    const refusal = refusalOf(answer);
    if (refusal?.reason === "exists" && !flags.add) {
      if (!ask(`${refusal.error}.\n\nAdd these faces to ${refusal.name}?`)) return null;
      flags.add = true;
    } else if (refusal?.reason === "unlike" && !flags.force) {
      if (!ask(`${refusal.error}\n\nAdd them to ${refusal.name} anyway?`)) return null;
      flags.force = true;
    } else if (answer instanceof Error) {
      throw answer;
    } else {
      return answer;
    }
  }
}
