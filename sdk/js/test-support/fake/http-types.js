// wasi:http/types: enough to let http.js load; its requests are tested in a built component.
export class Fields {}
export class OutgoingRequest {}
export class OutgoingBody {}
