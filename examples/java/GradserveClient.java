import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A dependency-free gradserve client on java.net.http (JDK 11+; the example uses Java 17 syntax).
 * A request whose tensors hold more than {@code BINARY_THRESHOLD_BYTES} travels in binary framing: a JSON header,
 * then the tensors' raw little-endian bytes, the header's length in {@code Inference-Header-Content-Length}; the
 * answer comes back framed too. Smaller requests are JSON, float tensors above {@code B64_THRESHOLD} elements as
 * base64, with answers in b64, so values arrive bit-exact without parsing long number lists.
 */
final class GradserveClient {
  static final int B64_THRESHOLD = 64;
  static final int BINARY_THRESHOLD_BYTES = 4096;
  private static final String FRAMED = "application/octet-stream";
  private static final String HEADER_LENGTH = "Inference-Header-Content-Length";

  /** A dense row-major tensor; FP32/FP64 values are held as doubles (FP32 ones are exact float values). */
  record Tensor(long[] shape, String datatype, double[] data) {
    static Tensor fp32(long[] shape, double... data) {
      return new Tensor(shape, "FP32", data);
    }

    int width() {
      return switch (datatype) { case "FP64", "INT64" -> 8; case "BOOL" -> 1; default -> 4; };
    }

    /** The little-endian row-major bytes of the values in this tensor's datatype. */
    byte[] littleEndianBytes() {
      ByteBuffer buf = ByteBuffer.allocate(data.length * width()).order(ByteOrder.LITTLE_ENDIAN);
      for (double v : data) {
        switch (datatype) {
          case "FP32" -> buf.putFloat((float) v);
          case "FP64" -> buf.putDouble(v);
          case "INT32" -> buf.putInt((int) v);
          case "INT64" -> buf.putLong((long) v);
          default -> buf.put((byte) (v != 0 ? 1 : 0));
        }
      }
      return buf.array();
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

    /** A wire tensor: JSON {@code data}, {@code b64}, or bytes of the binary {@code section} of a framed answer. */
    @SuppressWarnings("unchecked")
    static Tensor fromWire(Object o, ByteBuffer section) {
      Map<String, Object> m = (Map<String, Object>) o;
      List<Object> sh = (List<Object>) m.get("shape");
      long[] shape = new long[sh.size()];
      for (int k = 0; k < shape.length; k++) shape[k] = ((Double) sh.get(k)).longValue();
      String dt = (String) m.get("datatype");
      double[] data;
      if (m.get("binary_data_size") instanceof Double size) {
        int offset = m.get("binary_data_offset") instanceof Double off ? off.intValue() : 0;
        if (section == null || offset + size.intValue() > section.capacity()) {
          throw new GradserveException("INVALID_RESPONSE", 200, "a binary tensor outside the binary section of the answer");
        }
        data = values(section.slice(offset, size.intValue()), dt);
      } else if (m.get("b64") instanceof String b64) {
        data = values(ByteBuffer.wrap(Base64.getDecoder().decode(b64)), dt);
      } else {
        List<Object> flat = new ArrayList<>();
        flatten(m.get("data"), flat);
        data = new double[flat.size()];
        for (int k = 0; k < data.length; k++) data[k] = number(flat.get(k));
      }
      return new Tensor(shape, dt, data);
    }

    private static double[] values(ByteBuffer bytes, String dt) {
      ByteBuffer buf = bytes.order(ByteOrder.LITTLE_ENDIAN);
      int width = switch (dt) { case "FP64", "INT64" -> 8; case "BOOL" -> 1; default -> 4; };
      double[] data = new double[buf.remaining() / width];
      for (int k = 0; k < data.length; k++) {
        data[k] = switch (dt) {
          case "FP32" -> buf.getFloat();
          case "FP64" -> buf.getDouble();
          case "INT32" -> buf.getInt();
          case "INT64" -> buf.getLong();
          default -> buf.get();
        };
      }
      return data;
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

  /**
   * The binary section of one framed request, filled while its JSON body is built. Blobs are laid out widest
   * element first after a JSON header padded to 8 bytes, so each starts at a multiple of its element width and the
   * service uses it in place.
   */
  static final class Frame {
    private record Blob(Map<String, Object> ref, byte[] bytes, int width) {}

    private final List<Blob> blobs = new ArrayList<>();
    private int headerLength;

    Map<String, Object> add(Tensor t) {
      byte[] bytes = t.littleEndianBytes();
      Map<String, Object> ref = new LinkedHashMap<>();
      ref.put("shape", t.shape());
      ref.put("datatype", t.datatype());
      ref.put("binary_data_size", bytes.length);
      ref.put("binary_data_offset", 0);
      blobs.add(new Blob(ref, bytes, t.width()));
      return ref;
    }

    byte[] build(Map<String, Object> body) {
      List<Blob> order = new ArrayList<>(blobs);
      order.sort(Comparator.comparingInt(Blob::width).reversed());
      int length = 0;
      for (Blob b : order) {
        b.ref().put("binary_data_offset", length);
        length += b.bytes().length;
      }
      byte[] json = Json.write(body).getBytes(StandardCharsets.UTF_8);
      headerLength = (json.length + 7) / 8 * 8;
      ByteBuffer out = ByteBuffer.allocate(headerLength + length);
      out.put(json);
      while (out.position() < headerLength) out.put((byte) ' ');
      for (Blob b : order) out.put(b.bytes());
      return out.array();
    }
  }

  /** An answer: its JSON, and the binary section its binary tensors point into when it was framed (else null). */
  private record Answer(Map<String, Object> json, ByteBuffer section) {}

  private final String baseUrl;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
  private boolean lastAnswerFramed;

  GradserveClient(String baseUrl) {
    this.baseUrl = baseUrl.replaceAll("/+$", "");
  }

  /** Whether the last answer came in binary framing. */
  boolean lastAnswerFramed() {
    return lastAnswerFramed;
  }

  /** POST /v1/vjp: sum over the cotangents of cotangent · d(output)/d(wrt). */
  Map<String, Object> vjp(Map<String, Object> graph, Map<String, Tensor> inputs, Map<String, Tensor> cotangents, List<String> wrt) {
    Frame frame = frameFor(inputs, cotangents);
    Map<String, Object> body = base(graph, inputs, frame);
    body.put("cotangents", wire(cotangents, frame));
    body.put("wrt", wrt);
    return decode(post("/v1/vjp", body, frame));
  }

  /** POST /v1/grad: the gradient of a one-element value. */
  Map<String, Object> grad(Map<String, Object> graph, Map<String, Tensor> inputs, String of, List<String> wrt) {
    Frame frame = frameFor(inputs, Map.of());
    Map<String, Object> body = base(graph, inputs, frame);
    body.put("of", of);
    body.put("wrt", wrt);
    return decode(post("/v1/grad", body, frame));
  }

  /** POST /v1/evaluate. */
  Map<String, Object> evaluate(Map<String, Object> graph, Map<String, Tensor> inputs) {
    Frame frame = frameFor(inputs, Map.of());
    return decode(post("/v1/evaluate", base(graph, inputs, frame), frame));
  }

  /** A frame when the request's tensors hold more than BINARY_THRESHOLD_BYTES, else null (JSON). */
  private static Frame frameFor(Map<String, Tensor> inputs, Map<String, Tensor> more) {
    long bytes = 0;
    for (Tensor t : inputs.values()) bytes += (long) t.data().length * t.width();
    for (Tensor t : more.values()) bytes += (long) t.data().length * t.width();
    return bytes > BINARY_THRESHOLD_BYTES ? new Frame() : null;
  }

  private static Map<String, Object> base(Map<String, Object> graph, Map<String, Tensor> inputs, Frame frame) {
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("graph", graph);
    body.put("inputs", wire(inputs, frame));
    body.put("encoding", frame != null ? "binary" : "b64");
    return body;
  }

  private static Map<String, Object> wire(Map<String, Tensor> m, Frame frame) {
    Map<String, Object> out = new LinkedHashMap<>();
    m.forEach((k, v) -> out.put(k, frame != null ? frame.add(v) : v.toWire()));
    return out;
  }

  /** Replace every tensor map of an answer (outputs, gradients, ...) by decoded Tensors. */
  @SuppressWarnings("unchecked")
  private static Map<String, Object> decode(Answer answer) {
    Map<String, Object> out = new LinkedHashMap<>();
    answer.json().forEach((field, v) -> {
      if (v instanceof Map<?, ?> m && (field.equals("outputs") || field.equals("gradients") || field.equals("tangents") || field.equals("hvp"))) {
        Map<String, Tensor> ts = new LinkedHashMap<>();
        ((Map<String, Object>) m).forEach((name, t) -> ts.put(name, Tensor.fromWire(t, answer.section())));
        out.put(field, ts);
      } else {
        out.put(field, v);
      }
    });
    return out;
  }

  @SuppressWarnings("unchecked")
  private Answer post(String path, Map<String, Object> body, Frame frame) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(baseUrl + path)).timeout(Duration.ofSeconds(60));
    if (frame != null) {
      byte[] framed = frame.build(body);
      b.header("Content-Type", FRAMED)
          .header(HEADER_LENGTH, String.valueOf(frame.headerLength))
          .header("Accept", FRAMED + ", application/problem+json")
          .POST(HttpRequest.BodyPublishers.ofByteArray(framed));
    } else {
      b.header("Content-Type", "application/json")
          .header("Accept", "application/json, application/problem+json")
          .POST(HttpRequest.BodyPublishers.ofString(Json.write(body)));
    }
    HttpResponse<byte[]> res;
    try {
      res = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
    } catch (IOException e) {
      throw new GradserveException("NETWORK_ERROR", 0, path + ": " + e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new GradserveException("NETWORK_ERROR", 0, path + ": interrupted");
    }
    byte[] bytes = res.body();
    Optional<String> head = res.headers().firstValue(HEADER_LENGTH);
    int n = head.isPresent() && res.statusCode() / 100 == 2 ? Integer.parseInt(head.get()) : bytes.length;
    String text = new String(bytes, 0, n, StandardCharsets.UTF_8);
    Object parsed;
    try {
      parsed = Json.parse(text);
    } catch (IllegalArgumentException e) {
      throw new GradserveException("HTTP_ERROR", res.statusCode(), text);
    }
    if (res.statusCode() / 100 != 2) {
      Map<String, Object> p = parsed instanceof Map<?, ?> ? (Map<String, Object>) parsed : Map.of();
      String code = p.get("code") instanceof String c ? c : "HTTP_ERROR";
      String detail = p.get("detail") instanceof String d ? d : text;
      throw new GradserveException(code, res.statusCode(), detail);
    }
    lastAnswerFramed = head.isPresent();
    // The section is a view of the answer's bytes: tensors are decoded from it without copying it first.
    ByteBuffer section = head.isPresent() ? ByteBuffer.wrap(bytes, n, bytes.length - n).slice() : null;
    return new Answer((Map<String, Object>) parsed, section);
  }
}
