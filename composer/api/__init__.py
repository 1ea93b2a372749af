"""What the `Network` facade and the command line share beyond the stages: how a network
leaves for another engine (`export`), how it runs on one (`engines`), the pictures
`render` draws (`pictures`), and the options of a training run (`TrainOptions`)."""

from composer.api.engines import ENGINES, run_on
from composer.api.export import EXPORTERS, ExportRequest, export
from composer.api.train_options import TrainOptions

__all__ = ["ENGINES", "EXPORTERS", "ExportRequest", "TrainOptions", "export", "run_on"]
