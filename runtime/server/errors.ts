/**
 * Errors in the OpenAI envelope: {"error": {"message", "type", "param", "code"}}. Every 4xx/5xx
 * the server sends goes through `ApiError` (or `fromFastifyError` for what fastify itself rejects:
 * bad JSON, body too large, wrong content type), so clients written for the OpenAI API read them.
 */

export type ErrorType = 'invalid_request_error' | 'not_found_error' | 'rate_limit_error' | 'server_error' | 'timeout_error' | 'unavailable_error';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type: ErrorType = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

interface FastifyLikeError { statusCode?: number; code?: string; message: string }

/** Maps fastify's own request errors (content-type parser, body limit) into ApiErrors. */
export function fromFastifyError(e: FastifyLikeError): ApiError {
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'Content-Type must be application/json', null, 'unsupported_media_type');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'request body is larger than this server accepts', null, 'request_too_large');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'request body is empty; expected a JSON object', null, 'invalid_json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(400, 'Content-Length does not match the body', null, 'invalid_request');
  }
  if (e instanceof SyntaxError || (e.statusCode === 400 && /JSON/i.test(e.message))) {
    return new ApiError(400, `request body is not valid JSON: ${e.message}`, null, 'invalid_json');
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return new ApiError(e.statusCode, e.message, null, e.code ?? null);
  return new ApiError(500, 'internal server error', null, 'internal_error');
}
