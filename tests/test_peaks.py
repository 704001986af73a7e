"""The CPU's FP32 peak counts physical cores: hyperthreads share a core's FMA units."""
from bench import peaks


def _sysfs(root, siblings, name="thread_siblings_list"):
    """siblings: logical cpu -> the cpulist of its core."""
    for cpu, cores in siblings.items():
        top = root / f"cpu{cpu}" / "topology"
        top.mkdir(parents=True)
        (top / name).write_text(f"{cores}\n")


def test_hyperthreads_of_one_core_count_once(tmp_path):
    _sysfs(tmp_path, {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3", 4: "4-5", 5: "4-5"})
    assert peaks.physical_cores([0, 1, 2, 3], tmp_path) == 2
    assert peaks.physical_cores([0, 4], tmp_path) == 2
    assert peaks.physical_cores([4, 5], tmp_path) == 1


def test_the_newer_file_name_is_read_too(tmp_path):
    _sysfs(tmp_path, {0: "0", 1: "1"}, name="core_cpus_list")
    assert peaks.physical_cores([0, 1], tmp_path) == 2


def test_an_unknown_topology_is_none(tmp_path):
    _sysfs(tmp_path, {0: "0"})
    assert peaks.physical_cores([0, 1], tmp_path) is None
    assert peaks.physical_cores([], tmp_path) is None


def test_the_peak_scales_with_physical_cores(monkeypatch):
    monkeypatch.setattr(peaks, "cpu_info", lambda: ({"avx512f"}, 2000.0))
    monkeypatch.setattr(peaks, "physical_cores", lambda cpus: len(cpus) // 2)
    out = peaks.cpu_peak(list(range(8)))
    assert out["physical_cores"] == 4
    assert out["peak_fp32_flops"] == 4 * 2000e6 * 64
    assert out["basis"].startswith("4 physical cores")
    monkeypatch.setattr(peaks, "physical_cores", lambda cpus: None)
    assert peaks.cpu_peak(list(range(8)))["peak_fp32_flops"] == 8 * 2000e6 * 64
