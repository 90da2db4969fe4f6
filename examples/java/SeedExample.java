import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The linear layer y = x·w (N=1, D=2, M=3) through gradserve from Java: given dL/dy, the service returns
 * dL/dx = dL/dy·wᵀ and dL/dw = xᵀ·dL/dy. The same numbers are computed here by hand and compared.
 *
 *   javac -d build examples/java/*.java && java -cp build SeedExample http://127.0.0.1:8080
 *
 * Output lines are {@code name [shape] = [row-major values]}; the exit code is 1 if the service disagrees.
 */
public final class SeedExample {
  public static void main(String[] args) {
    String url = args.length > 0 ? args[0] : "http://127.0.0.1:8080";
    GradserveClient gs = new GradserveClient(url);

    Map<String, Object> graph = Map.of(
        "inputs", Map.of(
            "x", Map.of("shape", Arrays.asList(null, 2.0), "datatype", "FP32"),
            "w", Map.of("shape", List.of(2.0, 3.0), "datatype", "FP32")),
        "nodes", List.of(Map.of("name", "y", "op", "matmul", "inputs", List.of("x", "w"))),
        "outputs", List.of("y"));

    double[] x = {1, 2};
    double[] w = {1, 2, 3, 4, 5, 6};
    double[] dy = {1, -1, 2};
    Map<String, GradserveClient.Tensor> inputs = new LinkedHashMap<>();
    inputs.put("x", GradserveClient.Tensor.fp32(new long[] {1, 2}, x));
    inputs.put("w", GradserveClient.Tensor.fp32(new long[] {2, 3}, w));
    Map<String, GradserveClient.Tensor> cot = Map.of("y", GradserveClient.Tensor.fp32(new long[] {1, 3}, dy));

    Map<String, Object> r = gs.vjp(graph, inputs, cot, List.of("x", "w"));
    @SuppressWarnings("unchecked")
    Map<String, GradserveClient.Tensor> outs = (Map<String, GradserveClient.Tensor>) r.get("outputs");
    @SuppressWarnings("unchecked")
    Map<String, GradserveClient.Tensor> grads = (Map<String, GradserveClient.Tensor>) r.get("gradients");
    show("y", outs.get("y"));
    show("dL/dx", grads.get("x"));
    show("dL/dw", grads.get("w"));

    // The same three products by hand (D=2, M=3).
    double[] y = new double[3], dx = new double[2], dw = new double[6];
    for (int m = 0; m < 3; m++) for (int d = 0; d < 2; d++) y[m] += x[d] * w[d * 3 + m];
    for (int d = 0; d < 2; d++) for (int m = 0; m < 3; m++) dx[d] += dy[m] * w[d * 3 + m];
    for (int d = 0; d < 2; d++) for (int m = 0; m < 3; m++) dw[d * 3 + m] = x[d] * dy[m];
    boolean ok = close(outs.get("y").data(), y) && close(grads.get("x").data(), dx) && close(grads.get("w").data(), dw);

    // A batch of 1000 rows (8000 bytes of FP32) is over the 4 KiB threshold: the request and the answer travel in
    // binary framing, raw little-endian bytes after a JSON header.
    int n = 1000;
    double[] xb = new double[n * 2];
    for (int k = 0; k < xb.length; k++) xb[k] = (k % 7) - 3 + k / 64.0;
    Map<String, GradserveClient.Tensor> batch = new LinkedHashMap<>();
    batch.put("x", GradserveClient.Tensor.fp32(new long[] {n, 2}, xb));
    batch.put("w", inputs.get("w"));
    @SuppressWarnings("unchecked")
    GradserveClient.Tensor yb = ((Map<String, GradserveClient.Tensor>) gs.evaluate(graph, batch).get("outputs")).get("y");
    double maxErr = 0;
    for (int row = 0; row < n; row++) {
      for (int m = 0; m < 3; m++) {
        double ref = (float) xb[row * 2] * w[m] + (float) xb[row * 2 + 1] * w[3 + m];
        maxErr = Math.max(maxErr, Math.abs(yb.data()[row * 3 + m] - ref));
      }
    }
    System.out.println("batch y " + yb.shapeString() + " via " + (gs.lastAnswerFramed() ? "binary" : "JSON") + ": max abs error " + maxErr);
    ok &= yb.shape()[0] == n && maxErr < 1e-4 && gs.lastAnswerFramed();

    try {
      gs.grad(graph, inputs, "y", List.of("x"));
      ok = false;
    } catch (GradserveClient.GradserveException e) {
      System.out.println("error " + e.code + " " + e.status + ": " + e.detail);
      ok &= e.code.equals("NOT_SCALAR");
    }
    System.out.println(ok ? "reference agrees" : "MISMATCH with the hand-computed reference");
    System.exit(ok ? 0 : 1);
  }

  private static void show(String name, GradserveClient.Tensor t) {
    StringBuilder b = new StringBuilder("[");
    for (int k = 0; k < t.data().length; k++) b.append(k > 0 ? ", " : "").append(t.data()[k]);
    System.out.println(name + " " + t.shapeString() + " = " + b.append(']'));
  }

  private static boolean close(double[] a, double[] b) {
    if (a.length != b.length) return false;
    for (int k = 0; k < a.length; k++) if (Math.abs(a[k] - b[k]) > 1e-5 * (1 + Math.abs(b[k]))) return false;
    return true;
  }
}
