// The REST API (/api, described by /api/openapi.json). Every call sends the token (the owner's
// or the view token) as a Bearer header: viewing is closed by default; every answer is JSON,
// errors as {error} (409s also carry a `reason`).

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export class Api {
  constructor(token) {
    this.token = token;
    this.canChange = false; // set from the server's hello: the owner's token
  }

  async call(method, path, body) {
    const headers = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(body);
    }
    const response = await fetch(path, { method, headers, body });
    const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (!response.ok) throw new ApiError(response.status, answer);
    return answer;
  }

  static person(name) {
    return `/api/people/${encodeURIComponent(name)}`;
  }

  people() {
    return this.call("GET", "/api/people").then((answer) => answer.people);
  }

  /**
   * files: File[] -> {name, examples_added, rejected, rejected_summary, picked: [{file, faces,
   * box, message}], warnings, lookalike_summary}. add: to the existing person of that name;
   * force: even unlike faces.
   */
  addExamples(name, files, { add = false, force = false } = {}) {
    const form = new FormData();
    for (const file of files) form.append("images", file, file.name);
    const query = new URLSearchParams();
    if (add) query.set("add", "true");
    if (force) query.set("force", "true");
    const suffix = query.size ? `?${query}` : "";
    return this.call("POST", `${Api.person(name)}/examples${suffix}`, form);
  }

  /** A thumbnail as an object URL (an <img src> could not send the token). */
  async imageUrl(path) {
    const headers = this.token ? { Authorization: `Bearer ${this.token}` } : {};
    const response = await fetch(path, { headers });
    if (!response.ok) throw new ApiError(response.status, null);
    return URL.createObjectURL(await response.blob());
  }

  rename(name, newName) {
    return this.call("PATCH", Api.person(name), { name: newName });
  }

  remove(name) {
    return this.call("DELETE", Api.person(name));
  }

  clear() {
    return this.call("DELETE", "/api/people");
  }

  /** file: File -> {width, height, faces}. */
  identify(file) {
    const form = new FormData();
    form.append("image", file, file.name);
    return this.call("POST", "/api/identify", form);
  }
}
