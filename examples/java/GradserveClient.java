import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A dependency-free gradserve client on java.net.http (JDK 11+; the example uses Java 17 syntax).
 * Float tensors travel as base64 of their little-endian bytes once they have more than {@code B64_THRESHOLD}
 * elements, and answers are requested in b64, so values arrive bit-exact without parsing long number lists.
 */
final class GradserveClient {
  static final int B64_THRESHOLD = 64;

  /** A dense row-major tensor; FP32/FP64 values are held as doubles (FP32 ones are exact float values). */
  record Tensor(long[] shape, String datatype, double[] data) {
    static Tensor fp32(long[] shape, double... data) {
      return new Tensor(shape, "FP32", data);
    }

    Map<String, Object> toWire() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("shape", shape);
      m.put("datatype", datatype);
      if (data.length > B64_THRESHOLD && (datatype.equals("FP32") || datatype.equals("FP64"))) {
        boolean f32 = datatype.equals("FP32");
        ByteBuffer buf = ByteBuffer.allocate(data.length * (f32 ? 4 : 8)).order(ByteOrder.LITTLE_ENDIAN);
        for (double v : data) {
          if (f32) buf.putFloat((float) v);
          else buf.putDouble(v);
        }
        m.put("b64", Base64.getEncoder().encodeToString(buf.array()));
      } else {
        m.put("data", data);
      }
      return m;
    }

    @SuppressWarnings("unchecked")
    static Tensor fromWire(Object o) {
      Map<String, Object> m = (Map<String, Object>) o;
      List<Object> sh = (List<Object>) m.get("shape");
      long[] shape = new long[sh.size()];
      for (int k = 0; k < shape.length; k++) shape[k] = ((Double) sh.get(k)).longValue();
      String dt = (String) m.get("datatype");
      double[] data;
      if (m.get("b64") instanceof String b64) {
        ByteBuffer buf = ByteBuffer.wrap(Base64.getDecoder().decode(b64)).order(ByteOrder.LITTLE_ENDIAN);
        int width = switch (dt) { case "FP64", "INT64" -> 8; case "BOOL" -> 1; default -> 4; };
        data = new double[buf.remaining() / width];
        for (int k = 0; k < data.length; k++) {
          data[k] = switch (dt) {
            case "FP32" -> buf.getFloat();
            case "FP64" -> buf.getDouble();
            case "INT32" -> buf.getInt();
            case "INT64" -> buf.getLong();
            default -> buf.get();
          };
        }
      } else {
        List<Object> flat = new ArrayList<>();
        flatten(m.get("data"), flat);
        data = new double[flat.size()];
        for (int k = 0; k < data.length; k++) data[k] = number(flat.get(k));
      }
      return new Tensor(shape, dt, data);
    }

    private static void flatten(Object v, List<Object> out) {
      if (v instanceof List<?> l) for (Object x : l) flatten(x, out);
      else if (v != null) out.add(v);
    }

    private static double number(Object v) {
      if (v instanceof Double d) return d;
      if (v instanceof Boolean b) return b ? 1 : 0;
      return switch ((String) v) {
        case "NaN" -> Double.NaN;
        case "Infinity" -> Double.POSITIVE_INFINITY;
        case "-Infinity" -> Double.NEGATIVE_INFINITY;
        default -> throw new IllegalArgumentException("not a number: " + v);
      };
    }

    String shapeString() {
      StringBuilder b = new StringBuilder("[");
      for (int k = 0; k < shape.length; k++) b.append(k > 0 ? ", " : "").append(shape[k]);
      return b.append(']').toString();
    }
  }

  /** A problem+json answer (or a transport failure, code NETWORK_ERROR), with the service's stable code. */
  static final class GradserveException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final String code;
    final int status;
    final String detail;

    GradserveException(String code, int status, String detail) {
      super(code + " (" + status + "): " + detail);
      this.code = code;
      this.status = status;
      this.detail = detail;
    }
  }

  private final String baseUrl;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

  GradserveClient(String baseUrl) {
    this.baseUrl = baseUrl.replaceAll("/+$", "");
  }

  /** POST /v1/vjp: sum over the cotangents of cotangent · d(output)/d(wrt). */
  Map<String, Object> vjp(Map<String, Object> graph, Map<String, Tensor> inputs, Map<String, Tensor> cotangents, List<String> wrt) {
    Map<String, Object> body = base(graph, inputs);
    body.put("cotangents", wire(cotangents));
    body.put("wrt", wrt);
    return decode(post("/v1/vjp", body));
  }

  /** POST /v1/grad: the gradient of a one-element value. */
  Map<String, Object> grad(Map<String, Object> graph, Map<String, Tensor> inputs, String of, List<String> wrt) {
    Map<String, Object> body = base(graph, inputs);
    body.put("of", of);
    body.put("wrt", wrt);
    return decode(post("/v1/grad", body));
  }

  /** POST /v1/evaluate. */
  Map<String, Object> evaluate(Map<String, Object> graph, Map<String, Tensor> inputs) {
    return decode(post("/v1/evaluate", base(graph, inputs)));
  }

  private Map<String, Object> base(Map<String, Object> graph, Map<String, Tensor> inputs) {
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("graph", graph);
    body.put("inputs", wire(inputs));
    body.put("encoding", "b64");
    return body;
  }

  private static Map<String, Object> wire(Map<String, Tensor> m) {
    Map<String, Object> out = new LinkedHashMap<>();
    m.forEach((k, v) -> out.put(k, v.toWire()));
    return out;
  }

  /** Replace every tensor map of an answer (outputs, gradients, ...) by decoded Tensors. */
  @SuppressWarnings("unchecked")
  private static Map<String, Object> decode(Map<String, Object> answer) {
    Map<String, Object> out = new LinkedHashMap<>();
    answer.forEach((field, v) -> {
      if (v instanceof Map<?, ?> m && (field.equals("outputs") || field.equals("gradients") || field.equals("tangents") || field.equals("hvp"))) {
        Map<String, Tensor> ts = new LinkedHashMap<>();
        ((Map<String, Object>) m).forEach((name, t) -> ts.put(name, Tensor.fromWire(t)));
        out.put(field, ts);
      } else {
        out.put(field, v);
      }
    });
    return out;
  }

  @SuppressWarnings("unchecked")
  private Map<String, Object> post(String path, Map<String, Object> body) {
    HttpRequest req = HttpRequest.newBuilder(URI.create(baseUrl + path))
        .timeout(Duration.ofSeconds(60))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, application/problem+json")
        .POST(HttpRequest.BodyPublishers.ofString(Json.write(body)))
        .build();
    HttpResponse<String> res;
    try {
      res = http.send(req, HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new GradserveException("NETWORK_ERROR", 0, path + ": " + e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new GradserveException("NETWORK_ERROR", 0, path + ": interrupted");
    }
    Object parsed;
    try {
      parsed = Json.parse(res.body());
    } catch (IllegalArgumentException e) {
      throw new GradserveException("HTTP_ERROR", res.statusCode(), res.body());
    }
    if (res.statusCode() / 100 != 2) {
      Map<String, Object> p = parsed instanceof Map<?, ?> ? (Map<String, Object>) parsed : Map.of();
      String code = p.get("code") instanceof String c ? c : "HTTP_ERROR";
      String detail = p.get("detail") instanceof String d ? d : res.body();
      throw new GradserveException(code, res.statusCode(), detail);
    }
    return (Map<String, Object>) parsed;
  }
}
