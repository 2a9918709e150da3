// The REST API (/api, described by /api/openapi.json). Changes send the token as a Bearer
// header; every answer is JSON, errors as {error}.

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
  }

  get canChange() {
    return Boolean(this.token);
  }

  async call(method, path, body) {
    const headers = {};
    if (method !== "GET" && this.token) headers.Authorization = `Bearer ${this.token}`;
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

  /** files: File[] -> {name, examples_added, rejected: [{file, reason}], picked: [{file, faces,
   * box, message}], warnings}. */
  addExamples(name, files) {
    const form = new FormData();
    for (const file of files) form.append("images", file, file.name);
    return this.call("POST", `${Api.person(name)}/examples`, form);
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
