//! The built-in bilingual (English / Simplified Chinese) catalog vocabulary: top categories,
//! subcategories, product types with price ranges, brands, colours, materials, sizes and
//! per-category styles and selling points.
//!
//! This is plain static data; the generator refers to entries by index, so appending is
//! safe but reordering changes every generated catalog (and thus every seed's output).

/// A word or phrase in both languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub en: &'static str,
    pub zh: &'static str,
}

const fn t(en: &'static str, zh: &'static str) -> Term {
    Term { en, zh }
}

/// Which size scale a product type uses, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeKind {
    None,
    /// XS .. XXL.
    Apparel,
    /// EU shoe sizes.
    Shoe,
}

/// A product type: the leaf of the category tree, with its plausible price range in USD.
#[derive(Debug, Clone, Copy)]
pub struct Product {
    pub name: Term,
    pub min_price: f64,
    pub max_price: f64,
    pub size: SizeKind,
}

const fn p(en: &'static str, zh: &'static str, min_price: f64, max_price: f64) -> Product {
    Product { name: t(en, zh), min_price, max_price, size: SizeKind::None }
}

const fn sized(product: Product, size: SizeKind) -> Product {
    Product { size, ..product }
}

/// A second-level category. `materials` lists the materials its products come in (empty:
/// no material attribute); `colored` says whether its products have a colour.
#[derive(Debug, Clone, Copy)]
pub struct Subcategory {
    pub name: Term,
    pub colored: bool,
    pub materials: &'static [Term],
    pub products: &'static [Product],
}

/// A top-level category with the style words and selling points its descriptions use.
/// `prior` is the relative share of shoppers whose tastes centre on it.
#[derive(Debug, Clone, Copy)]
pub struct Category {
    pub name: Term,
    pub prior: f64,
    pub styles: &'static [Term],
    pub selling_points: &'static [Term],
    pub subcategories: &'static [Subcategory],
}

/// Price positioning of a brand: multiplies the centre of a product type's price range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BrandTier {
    Budget,
    Mid,
    Premium,
}

impl BrandTier {
    pub fn price_factor(self) -> f64 {
        match self {
            BrandTier::Budget => 0.7,
            BrandTier::Mid => 1.0,
            BrandTier::Premium => 1.6,
        }
    }
}

/// A brand selling in one top category (index into [`CATEGORIES`]). Brands without a
/// Chinese name keep their English name in Chinese titles, as shops do.
#[derive(Debug, Clone, Copy)]
pub struct Brand {
    pub en: &'static str,
    pub zh: Option<&'static str>,
    pub category: usize,
    pub tier: BrandTier,
}

const fn b(en: &'static str, zh: Option<&'static str>, category: usize, tier: BrandTier) -> Brand {
    Brand { en, zh, category, tier }
}

impl Brand {
    pub fn zh_name(&self) -> &'static str {
        self.zh.unwrap_or(self.en)
    }
}

pub const LEATHER: Term = t("Leather", "真皮");
pub const COTTON: Term = t("Cotton", "纯棉");
pub const WOOL: Term = t("Wool", "羊毛");
pub const SILK: Term = t("Silk", "真丝");
pub const POLYESTER: Term = t("Polyester", "涤纶");
pub const LINEN: Term = t("Linen", "亚麻");
pub const DENIM: Term = t("Denim", "牛仔布");
pub const STAINLESS_STEEL: Term = t("Stainless Steel", "不锈钢");
pub const ALUMINUM: Term = t("Aluminum", "铝合金");
pub const PLASTIC: Term = t("Plastic", "塑料");
pub const SOLID_WOOD: Term = t("Solid Wood", "实木");
pub const BAMBOO: Term = t("Bamboo", "竹制");
pub const CERAMIC: Term = t("Ceramic", "陶瓷");
pub const GLASS: Term = t("Glass", "玻璃");
pub const SILICONE: Term = t("Silicone", "硅胶");
pub const NYLON: Term = t("Nylon", "尼龙");
pub const CAST_IRON: Term = t("Cast Iron", "铸铁");
pub const RUBBER: Term = t("Rubber", "橡胶");

/// Every material some subcategory uses.
pub const MATERIALS: &[Term] = &[
    LEATHER,
    COTTON,
    WOOL,
    SILK,
    POLYESTER,
    LINEN,
    DENIM,
    STAINLESS_STEEL,
    ALUMINUM,
    PLASTIC,
    SOLID_WOOD,
    BAMBOO,
    CERAMIC,
    GLASS,
    SILICONE,
    NYLON,
    CAST_IRON,
    RUBBER,
];

/// Colours with their relative frequency in the catalog (black and white dominate, as in
/// real shops).
pub const COLORS: &[(Term, f64)] = &[
    (t("Black", "黑色"), 5.0),
    (t("White", "白色"), 4.0),
    (t("Grey", "灰色"), 2.5),
    (t("Red", "红色"), 2.0),
    (t("Blue", "蓝色"), 2.5),
    (t("Navy", "藏青色"), 1.5),
    (t("Green", "绿色"), 1.5),
    (t("Yellow", "黄色"), 1.0),
    (t("Pink", "粉色"), 1.5),
    (t("Purple", "紫色"), 1.0),
    (t("Brown", "棕色"), 1.2),
    (t("Beige", "米色"), 1.2),
    (t("Silver", "银色"), 1.0),
    (t("Gold", "金色"), 0.7),
    (t("Orange", "橙色"), 0.8),
];

pub const APPAREL_SIZES: &[&str] = &["XS", "S", "M", "L", "XL", "XXL"];
pub const SHOE_SIZES: &[&str] =
    &["EU 36", "EU 37", "EU 38", "EU 39", "EU 40", "EU 41", "EU 42", "EU 43", "EU 44", "EU 45"];

/// Indices into [`CATEGORIES`], for the brand table.
const ELECTRONICS: usize = 0;
const CLOTHING: usize = 1;
const HOME: usize = 2;
const BEAUTY: usize = 3;
const SPORTS: usize = 4;
const BOOKS: usize = 5;
const TOYS: usize = 6;
const FOOD: usize = 7;

pub const CATEGORIES: &[Category] = &[
    Category {
        name: t("Electronics", "数码电子"),
        prior: 1.6,
        styles: &[
            t("Pro", "专业版"),
            t("Portable", "便携"),
            t("Compact", "小巧"),
            t("Smart", "智能"),
            t("Classic", "经典款"),
            t("Ultra", "旗舰款"),
        ],
        selling_points: &[
            t("Designed for reliable everyday performance.", "性能稳定可靠，适合日常使用。"),
            t("Backed by a two-year warranty.", "享受两年质保。"),
            t("Energy-efficient with a sleek, modern design.", "节能省电，外观时尚简约。"),
        ],
        subcategories: &[
            Subcategory {
                name: t("Audio", "影音"),
                colored: true,
                materials: &[PLASTIC, ALUMINUM, LEATHER],
                products: &[
                    p("Bluetooth Headphones", "蓝牙耳机", 20.0, 350.0),
                    p("Bluetooth Speaker", "蓝牙音箱", 20.0, 250.0),
                    p("Wireless Earbuds", "无线耳塞", 20.0, 250.0),
                    p("Soundbar", "回音壁音箱", 80.0, 600.0),
                ],
            },
            Subcategory {
                name: t("Phones & Accessories", "手机配件"),
                colored: true,
                materials: &[PLASTIC, SILICONE, LEATHER, ALUMINUM],
                products: &[
                    p("Smartphone", "智能手机", 150.0, 1200.0),
                    p("Phone Case", "手机壳", 5.0, 40.0),
                    p("Power Bank", "充电宝", 15.0, 80.0),
                    p("Charging Cable", "数据线", 5.0, 30.0),
                ],
            },
            Subcategory {
                name: t("Computers", "电脑办公"),
                colored: true,
                materials: &[PLASTIC, ALUMINUM],
                products: &[
                    p("Laptop", "笔记本电脑", 350.0, 2500.0),
                    p("Mechanical Keyboard", "机械键盘", 40.0, 200.0),
                    p("Wireless Mouse", "无线鼠标", 10.0, 90.0),
                    p("Monitor", "显示器", 120.0, 900.0),
                ],
            },
            Subcategory {
                name: t("Cameras", "摄影摄像"),
                colored: true,
                materials: &[PLASTIC, ALUMINUM],
                products: &[
                    p("Digital Camera", "数码相机", 200.0, 2000.0),
                    p("Action Camera", "运动相机", 80.0, 500.0),
                    p("Tripod", "三脚架", 15.0, 150.0),
                ],
            },
            Subcategory {
                name: t("Wearables", "智能穿戴"),
                colored: true,
                materials: &[SILICONE, STAINLESS_STEEL, LEATHER],
                products: &[p("Smartwatch", "智能手表", 60.0, 500.0), p("Fitness Tracker", "运动手环", 25.0, 150.0)],
            },
        ],
    },
    Category {
        name: t("Clothing", "服装"),
        prior: 1.5,
        styles: &[
            t("Casual", "休闲"),
            t("Slim Fit", "修身"),
            t("Oversized", "宽松"),
            t("Vintage", "复古"),
            t("Classic", "经典款"),
            t("Streetwear", "街头风"),
        ],
        selling_points: &[
            t("Comfortable to wear all day.", "穿着舒适，适合全天穿搭。"),
            t("Machine washable and easy to care for.", "可机洗，易打理。"),
            t("A versatile piece for any wardrobe.", "百搭单品，轻松搭配。"),
        ],
        subcategories: &[
            Subcategory {
                name: t("Tops", "上衣"),
                colored: true,
                materials: &[COTTON, WOOL, SILK, LINEN, POLYESTER],
                products: &[
                    sized(p("T-Shirt", "T恤", 8.0, 40.0), SizeKind::Apparel),
                    sized(p("Shirt", "衬衫", 15.0, 80.0), SizeKind::Apparel),
                    sized(p("Hoodie", "连帽卫衣", 20.0, 90.0), SizeKind::Apparel),
                    sized(p("Sweater", "毛衣", 25.0, 150.0), SizeKind::Apparel),
                ],
            },
            Subcategory {
                name: t("Bottoms", "下装"),
                colored: true,
                materials: &[DENIM, COTTON, LINEN, POLYESTER],
                products: &[
                    sized(p("Jeans", "牛仔裤", 25.0, 120.0), SizeKind::Apparel),
                    sized(p("Skirt", "半身裙", 15.0, 90.0), SizeKind::Apparel),
                    sized(p("Shorts", "短裤", 10.0, 50.0), SizeKind::Apparel),
                ],
            },
            Subcategory {
                name: t("Outerwear", "外套"),
                colored: true,
                materials: &[NYLON, POLYESTER, WOOL, COTTON],
                products: &[
                    sized(p("Down Jacket", "羽绒服", 60.0, 400.0), SizeKind::Apparel),
                    sized(p("Trench Coat", "风衣", 60.0, 300.0), SizeKind::Apparel),
                ],
            },
            Subcategory {
                name: t("Shoes", "鞋靴"),
                colored: true,
                materials: &[LEATHER, RUBBER, NYLON],
                products: &[
                    sized(p("Sneakers", "运动鞋", 30.0, 180.0), SizeKind::Shoe),
                    sized(p("Boots", "靴子", 40.0, 250.0), SizeKind::Shoe),
                    sized(p("Sandals", "凉鞋", 15.0, 80.0), SizeKind::Shoe),
                ],
            },
            Subcategory {
                name: t("Accessories", "服饰配件"),
                colored: true,
                materials: &[LEATHER, COTTON, WOOL, SILK],
                products: &[
                    p("Scarf", "围巾", 10.0, 80.0),
                    p("Baseball Cap", "棒球帽", 8.0, 40.0),
                    p("Handbag", "手提包", 25.0, 400.0),
                ],
            },
        ],
    },
    Category {
        name: t("Home & Kitchen", "家居厨房"),
        prior: 1.2,
        styles: &[
            t("Modern", "现代简约"),
            t("Nordic", "北欧风"),
            t("Classic", "经典款"),
            t("Minimalist", "极简"),
            t("Japanese-Style", "日式"),
        ],
        selling_points: &[
            t("Easy to clean and built to last.", "易清洁，经久耐用。"),
            t("Adds warmth and style to any home.", "为家增添温馨与格调。"),
            t("Thoughtfully designed for everyday use.", "设计贴心，适合日常使用。"),
        ],
        subcategories: &[
            Subcategory {
                name: t("Cookware", "锅具"),
                colored: true,
                materials: &[STAINLESS_STEEL, CAST_IRON, ALUMINUM, CERAMIC],
                products: &[
                    p("Frying Pan", "煎锅", 15.0, 120.0),
                    p("Stock Pot", "汤锅", 20.0, 150.0),
                    p("Rice Cooker", "电饭煲", 30.0, 250.0),
                ],
            },
            Subcategory {
                name: t("Tableware", "餐具水杯"),
                colored: true,
                materials: &[CERAMIC, GLASS, STAINLESS_STEEL, BAMBOO],
                products: &[
                    p("Coffee Mug", "马克杯", 5.0, 30.0),
                    p("Dinner Plate Set", "餐盘套装", 20.0, 120.0),
                    p("Chopsticks Set", "筷子套装", 5.0, 30.0),
                    p("Insulated Bottle", "保温杯", 10.0, 50.0),
                ],
            },
            Subcategory {
                name: t("Bedding", "床上用品"),
                colored: true,
                materials: &[COTTON, SILK, LINEN],
                products: &[p("Duvet Cover", "被套", 25.0, 150.0), p("Pillow", "枕头", 10.0, 80.0)],
            },
            Subcategory {
                name: t("Furniture & Lighting", "家具灯具"),
                colored: true,
                materials: &[SOLID_WOOD, STAINLESS_STEEL, BAMBOO],
                products: &[
                    p("Desk Lamp", "台灯", 15.0, 120.0),
                    p("Bookshelf", "书架", 40.0, 300.0),
                    p("Office Chair", "办公椅", 60.0, 500.0),
                ],
            },
            Subcategory {
                name: t("Storage", "收纳整理"),
                colored: true,
                materials: &[PLASTIC, BAMBOO, COTTON],
                products: &[p("Storage Box", "收纳盒", 5.0, 40.0), p("Laundry Basket", "洗衣篮", 10.0, 45.0)],
            },
        ],
    },
    Category {
        name: t("Beauty", "美妆个护"),
        prior: 1.1,
        styles: &[
            t("Hydrating", "补水"),
            t("Gentle", "温和"),
            t("Long-Lasting", "持久"),
            t("Natural", "天然"),
            t("Travel-Size", "旅行装"),
        ],
        selling_points: &[
            t("Suitable for all skin types.", "适合各种肤质。"),
            t("Dermatologist tested and cruelty free.", "经皮肤科测试，无动物实验。"),
            t("Light texture that absorbs quickly.", "质地轻薄，快速吸收。"),
        ],
        subcategories: &[
            Subcategory {
                name: t("Skincare", "护肤"),
                colored: false,
                materials: &[],
                products: &[
                    p("Face Cream", "面霜", 10.0, 120.0),
                    p("Facial Cleanser", "洗面奶", 6.0, 40.0),
                    p("Sunscreen", "防晒霜", 8.0, 45.0),
                    p("Sheet Mask", "面膜", 5.0, 40.0),
                ],
            },
            Subcategory {
                name: t("Makeup", "彩妆"),
                colored: true,
                materials: &[],
                products: &[
                    p("Lipstick", "口红", 8.0, 50.0),
                    p("Foundation", "粉底液", 10.0, 60.0),
                    p("Eyeshadow Palette", "眼影盘", 10.0, 70.0),
                ],
            },
            Subcategory {
                name: t("Hair Care", "洗护发"),
                colored: false,
                materials: &[],
                products: &[p("Shampoo", "洗发水", 5.0, 35.0), p("Hair Dryer", "吹风机", 20.0, 300.0)],
            },
            Subcategory {
                name: t("Fragrance", "香水"),
                colored: false,
                materials: &[],
                products: &[p("Perfume", "香水", 20.0, 200.0)],
            },
        ],
    },
    Category {
        name: t("Sports & Outdoors", "运动户外"),
        prior: 1.0,
        styles: &[
            t("Lightweight", "轻量"),
            t("Professional", "专业级"),
            t("Breathable", "透气"),
            t("Durable", "耐用"),
            t("Waterproof", "防水"),
        ],
        selling_points: &[
            t("Built for training and the outdoors.", "专为训练和户外设计。"),
            t("Durable and comfortable for long sessions.", "耐用舒适，适合长时间运动。"),
            t("Trusted by athletes and weekend adventurers.", "深受运动员和户外爱好者信赖。"),
        ],
        subcategories: &[
            Subcategory {
                name: t("Fitness", "健身训练"),
                colored: true,
                materials: &[RUBBER, STAINLESS_STEEL, NYLON],
                products: &[
                    p("Yoga Mat", "瑜伽垫", 12.0, 80.0),
                    p("Dumbbells", "哑铃", 15.0, 150.0),
                    p("Resistance Bands", "弹力带", 8.0, 40.0),
                ],
            },
            Subcategory {
                name: t("Running", "跑步"),
                colored: true,
                materials: &[NYLON, POLYESTER, COTTON],
                products: &[
                    sized(p("Running Shoes", "跑鞋", 40.0, 200.0), SizeKind::Shoe),
                    sized(p("Sports Socks", "运动袜", 5.0, 25.0), SizeKind::Apparel),
                ],
            },
            Subcategory {
                name: t("Camping", "露营"),
                colored: true,
                materials: &[NYLON, POLYESTER, ALUMINUM],
                products: &[
                    p("Tent", "帐篷", 40.0, 500.0),
                    p("Sleeping Bag", "睡袋", 25.0, 250.0),
                    p("Camping Lantern", "露营灯", 10.0, 60.0),
                ],
            },
            Subcategory {
                name: t("Cycling", "骑行"),
                colored: true,
                materials: &[PLASTIC, NYLON, LEATHER],
                products: &[
                    p("Bike Helmet", "骑行头盔", 25.0, 200.0),
                    sized(p("Cycling Gloves", "骑行手套", 10.0, 50.0), SizeKind::Apparel),
                ],
            },
            Subcategory {
                name: t("Ball Sports", "球类运动"),
                colored: true,
                materials: &[RUBBER, LEATHER, ALUMINUM],
                products: &[p("Basketball", "篮球", 15.0, 80.0), p("Badminton Racket", "羽毛球拍", 15.0, 200.0)],
            },
        ],
    },
    Category {
        name: t("Books", "图书"),
        prior: 0.8,
        styles: &[
            t("Paperback", "平装"),
            t("Hardcover", "精装"),
            t("Illustrated", "插图版"),
            t("Collector's Edition", "典藏版"),
            t("Annotated", "注释版"),
        ],
        selling_points: &[
            t("A gripping read from start to finish.", "情节引人入胜，让人爱不释手。"),
            t("Praised by critics and readers alike.", "广受评论家和读者好评。"),
            t("A perfect gift for book lovers.", "送给爱书人的理想礼物。"),
        ],
        subcategories: &[
            Subcategory {
                name: t("Fiction", "小说"),
                colored: false,
                materials: &[],
                products: &[
                    p("Mystery Novel", "悬疑小说", 8.0, 25.0),
                    p("Science Fiction Novel", "科幻小说", 8.0, 25.0),
                    p("Romance Novel", "言情小说", 6.0, 20.0),
                ],
            },
            Subcategory {
                name: t("Nonfiction", "人文社科"),
                colored: false,
                materials: &[],
                products: &[p("History Book", "历史读物", 10.0, 40.0), p("Biography", "人物传记", 10.0, 35.0)],
            },
            Subcategory {
                name: t("Children's Books", "童书"),
                colored: false,
                materials: &[],
                products: &[p("Picture Book", "绘本", 6.0, 25.0)],
            },
            Subcategory {
                name: t("Education", "教育学习"),
                colored: false,
                materials: &[],
                products: &[
                    p("Language Learning Book", "语言学习书", 10.0, 40.0),
                    p("Programming Guide", "编程指南", 20.0, 60.0),
                    p("Cookbook", "菜谱", 12.0, 45.0),
                ],
            },
        ],
    },
    Category {
        name: t("Toys", "玩具"),
        prior: 0.8,
        styles: &[
            t("Educational", "益智"),
            t("Classic", "经典款"),
            t("Deluxe", "豪华版"),
            t("Mini", "迷你"),
            t("Creative", "创意"),
        ],
        selling_points: &[
            t("Safe, non-toxic materials for kids aged 3 and up.", "采用安全无毒材料，适合3岁以上儿童。"),
            t("Sparks creativity and imagination.", "激发创造力和想象力。"),
            t("A great gift for birthdays and holidays.", "生日和节日送礼佳选。"),
        ],
        subcategories: &[
            Subcategory {
                name: t("Building Toys", "积木拼插"),
                colored: true,
                materials: &[PLASTIC, SOLID_WOOD],
                products: &[p("Building Blocks Set", "积木套装", 10.0, 150.0), p("Jigsaw Puzzle", "拼图", 8.0, 40.0)],
            },
            Subcategory {
                name: t("Dolls & Plush", "娃娃毛绒"),
                colored: true,
                materials: &[COTTON, POLYESTER],
                products: &[p("Plush Toy", "毛绒玩具", 8.0, 50.0), p("Doll", "玩偶", 10.0, 60.0)],
            },
            Subcategory {
                name: t("Remote Control", "遥控玩具"),
                colored: true,
                materials: &[PLASTIC],
                products: &[p("RC Car", "遥控车", 20.0, 200.0), p("Toy Drone", "玩具无人机", 40.0, 400.0)],
            },
            Subcategory {
                name: t("Games & Learning", "益智游戏"),
                colored: true,
                materials: &[SOLID_WOOD, PLASTIC],
                products: &[p("Science Kit", "科学实验套装", 15.0, 60.0), p("Board Game", "桌游", 15.0, 80.0)],
            },
        ],
    },
    Category {
        name: t("Food & Grocery", "食品"),
        prior: 1.0,
        styles: &[
            t("Organic", "有机"),
            t("Premium", "特级"),
            t("Classic", "经典"),
            t("Family Pack", "家庭装"),
            t("Low Sugar", "低糖"),
        ],
        selling_points: &[
            t("Carefully selected ingredients with rich flavor.", "精选原料，口感醇厚。"),
            t("No artificial colors or preservatives.", "不含人工色素和防腐剂。"),
            t("Sealed fresh for lasting taste.", "密封保鲜，美味持久。"),
        ],
        subcategories: &[
            Subcategory {
                name: t("Snacks", "休闲零食"),
                colored: false,
                materials: &[],
                products: &[
                    p("Potato Chips", "薯片", 2.0, 10.0),
                    p("Mixed Nuts", "混合坚果", 6.0, 30.0),
                    p("Chocolate", "巧克力", 3.0, 25.0),
                ],
            },
            Subcategory {
                name: t("Beverages", "酒水饮料"),
                colored: false,
                materials: &[],
                products: &[
                    p("Green Tea", "绿茶", 5.0, 60.0),
                    p("Coffee Beans", "咖啡豆", 8.0, 40.0),
                    p("Sparkling Water", "气泡水", 3.0, 15.0),
                ],
            },
            Subcategory {
                name: t("Pantry", "粮油调味"),
                colored: false,
                materials: &[],
                products: &[
                    p("Olive Oil", "橄榄油", 8.0, 40.0),
                    p("Jasmine Rice", "香米", 8.0, 35.0),
                    p("Soy Sauce", "酱油", 3.0, 15.0),
                    p("Honey", "蜂蜜", 6.0, 30.0),
                ],
            },
            Subcategory {
                name: t("Instant Food", "方便速食"),
                colored: false,
                materials: &[],
                products: &[p("Instant Noodles", "方便面", 3.0, 20.0)],
            },
        ],
    },
];

use BrandTier::{Budget, Mid, Premium};

/// Brands (all fictional). Names are unique across categories so that brand affinities in
/// the ground truth can be reported by name.
pub const BRANDS: &[Brand] = &[
    b("Acme", None, ELECTRONICS, Mid),
    b("Voltix", Some("伏特斯"), ELECTRONICS, Mid),
    b("Nimbus Audio", None, ELECTRONICS, Premium),
    b("Lumio", Some("流明"), ELECTRONICS, Budget),
    b("Kestrel", None, ELECTRONICS, Premium),
    b("Zentro", None, ELECTRONICS, Budget),
    b("Northwind", None, CLOTHING, Mid),
    b("Urban Thread", Some("城市织造"), CLOTHING, Budget),
    b("Maple & Co", None, CLOTHING, Premium),
    b("Silkroad", Some("丝路"), CLOTHING, Premium),
    b("Basicly", None, CLOTHING, Budget),
    b("Everpine", None, CLOTHING, Mid),
    b("HearthHome", Some("暖居"), HOME, Mid),
    b("Ironwood", None, HOME, Premium),
    b("Copperleaf", None, HOME, Premium),
    b("Nordhaus", None, HOME, Mid),
    b("Bamboo Lane", Some("竹语"), HOME, Budget),
    b("Kitchara", None, HOME, Budget),
    b("Lotus Dew", Some("莲露"), BEAUTY, Mid),
    b("Velvetine", None, BEAUTY, Premium),
    b("PureBloom", None, BEAUTY, Budget),
    b("Aurelle", None, BEAUTY, Premium),
    b("Jade Garden", Some("玉园"), BEAUTY, Mid),
    b("Summit Gear", None, SPORTS, Premium),
    b("Trailblaze", None, SPORTS, Mid),
    b("Apex Motion", Some("极动"), SPORTS, Mid),
    b("Riverstone", None, SPORTS, Budget),
    b("Peakform", None, SPORTS, Premium),
    b("Harbor Press", None, BOOKS, Mid),
    b("Lantern Books", Some("灯塔书局"), BOOKS, Mid),
    b("Quill & Ink", None, BOOKS, Premium),
    b("Bluebird Publishing", None, BOOKS, Budget),
    b("Redwood House", None, BOOKS, Mid),
    b("Tinker Town", None, TOYS, Mid),
    b("Bright Blocks", Some("积木乐"), TOYS, Budget),
    b("Moonbeam Toys", None, TOYS, Premium),
    b("Wobblet", None, TOYS, Budget),
    b("Little Panda", Some("小熊猫"), TOYS, Mid),
    b("Golden Harvest", Some("金谷"), FOOD, Mid),
    b("Mountain Tea Co", Some("山茶"), FOOD, Premium),
    b("FreshFarm", None, FOOD, Budget),
    b("Oak & Honey", None, FOOD, Premium),
    b("Spice Route", None, FOOD, Mid),
    b("Green Valley", Some("绿谷"), FOOD, Budget),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn has_han(s: &str) -> bool {
        s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    #[test]
    fn vocabulary_is_rich_enough_and_well_formed() {
        assert_eq!(CATEGORIES.len(), 8);
        let mut product_names = HashSet::new();
        let mut materials = HashSet::new();
        for category in CATEGORIES {
            assert!(has_han(category.name.zh), "{}", category.name.en);
            assert!((3..=6).contains(&category.subcategories.len()), "{}", category.name.en);
            assert!(!category.styles.is_empty() && !category.selling_points.is_empty());
            for sub in category.subcategories {
                assert!(has_han(sub.name.zh), "{}", sub.name.en);
                assert!(!sub.products.is_empty());
                materials.extend(sub.materials.iter().map(|m| m.en));
                for product in sub.products {
                    assert!(has_han(product.name.zh), "{}", product.name.en);
                    assert!(0.0 < product.min_price && product.min_price < product.max_price);
                    assert!(product_names.insert(product.name.en), "duplicate {}", product.name.en);
                }
            }
        }
        assert!(product_names.len() >= 60, "{} product types", product_names.len());
        assert!(materials.len() >= 10, "{} materials", materials.len());
        assert_eq!(materials.len(), MATERIALS.len(), "MATERIALS lists exactly the used ones");
        assert!(COLORS.len() >= 12);
        assert!(BRANDS.len() >= 40);
        let brand_names: HashSet<_> = BRANDS.iter().map(|b| b.en).collect();
        assert_eq!(brand_names.len(), BRANDS.len(), "brand names are unique");
        for category in 0..CATEGORIES.len() {
            assert!(BRANDS.iter().filter(|b| b.category == category).count() >= 4);
        }
        assert!(BRANDS.iter().filter_map(|b| b.zh).all(has_han));
    }
}
